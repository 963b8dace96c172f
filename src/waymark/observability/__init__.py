"""Observability: structured logs, Prometheus metrics and their /metrics listener, the
request observer (request ids, access log) and error tracking; `wiring.py` sets them up
for a process."""
