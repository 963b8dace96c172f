"""The ASGI application for granian: settings come from WAYMARK_* variables."""

import gc

from waymark.app import create_app

app = create_app()
# Everything built so far (modules, the app, ORM metadata) lives as long as the worker. Moving
# it out of the collector's reach keeps full collections short: they had stalled a worker
# for 100-150 ms at a time under steady edit load (bench/RESULTS.md, edit latency).
gc.collect()
gc.freeze()
