"""The ASGI application for granian: settings come from WAYMARK_* variables."""

import gc

from waymark.app import create_app, setup_process
from waymark.jobs.queue import skip_unused_client_libraries
from waymark.settings import load_settings

settings = load_settings()
skip_unused_client_libraries(settings)  # this process: an app worker, nothing else
setup_process(settings)  # JSON logs, build info, error tracking, websocket close on stop
app = create_app(settings)
# Everything built so far (modules, the app, ORM metadata) lives as long as the worker. Moving
# it out of the collector's reach keeps full collections short: they had stalled a worker
# for 100-150 ms at a time under steady edit load (bench/RESULTS.md, edit latency).
gc.collect()
gc.freeze()
