"""The Litestar plugin that hands the app's services to handlers as typed dependencies.

`create_app` builds the services once (the backends through `Realtime`, from the settings);
`ServicesPlugin` registers them with `Provide`, so a handler names what it needs as a
parameter (``services: Services``, ``realtime: Realtime``, ``limiter: RateLimiter``) instead
of looking it up on ``app.state``. Code that is not a handler (the actor dependency, ASGI
layers, tests) reads them with `web.services_of` (docs/decisions/0024).
"""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from waymark.ratelimit.limiter import RateLimiter
from waymark.realtime.setup import Realtime
from waymark.web import Services


class ServicesPlugin(InitPluginProtocol):
    def __init__(self, services: Services, realtime: Realtime) -> None:
        self.services = services
        self.realtime = realtime

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        services, realtime = self.services, self.realtime

        def provide_services() -> Services:
            return services

        def provide_realtime() -> Realtime:
            return realtime

        def provide_limiter() -> RateLimiter:
            return realtime.limiter

        app_config.dependencies.update({
            name: Provide(provider, use_cache=True, sync_to_thread=False)
            for name, provider in (("services", provide_services),
                                   ("realtime", provide_realtime),
                                   ("limiter", provide_limiter))})
        # handler modules that cannot import these types at run time (cycles) still annotate.
        # With any names here Litestar also substitutes type variables in every handler's
        # annotations (utils.typing.expand_type_var_in_type_hint): a bare `-> Response` would
        # become Response[T] and be documented as a JSON object, lists included; T stays Any.
        app_config.signature_namespace.update(
            {"Services": Services, "Realtime": Realtime, "RateLimiter": RateLimiter,
             **dict.fromkeys(Response.__parameters__, Any)})  # type: ignore[attr-defined]
        app_config.state.update({"services": services, "realtime": realtime})  # services_of
        return app_config
