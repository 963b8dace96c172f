"""Zero-downtime deploys of local app processes behind HAProxy (docs/operations/deploy.md).

plan: what to run where; haproxy: the load balancer's config and runtime API;
processes: start, stop and health of one app instance; rolling: the release/rollback order.
"""
