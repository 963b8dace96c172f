"""The HTTP API of maps, layers and features: Litestar routes and the raw ASGI fast path for
published reads. The HTTP adapter of the domain in maps/, which knows nothing of HTTP."""
