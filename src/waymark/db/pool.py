"""The PostgreSQL connection budget: what Waymark may open against ``max_connections``.

Every process holds its own pool of at most WAYMARK_DB_POOL_SIZE connections (no overflow),
so the most the app can open is

    nodes x processes per node x WAYMARK_DB_POOL_SIZE  <=  max_connections - reserved

where a node runs WAYMARK_WORKERS app processes and one job worker, and ``reserved`` are the
superuser slots (plus a few for backups, the exporter and an operator's psql). `waymark
check` prints it; docs/operations/scaling.md explains the sizing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from waymark.settings import Settings

HEADROOM = 5  # pgBackRest, postgres_exporter, an operator's psql


@dataclass(frozen=True)
class ConnectionBudget:
    processes: int  # per node: app workers + the job worker
    pool_size: int
    max_connections: int
    reserved: int  # superuser_reserved_connections + HEADROOM

    @property
    def per_node(self) -> int:
        return self.processes * self.pool_size

    @property
    def usable(self) -> int:
        return max(self.max_connections - self.reserved, 0)

    @property
    def max_nodes(self) -> int:
        return self.usable // self.per_node

    def describe(self) -> str:
        return (f"database connections: up to {self.per_node} per node ({self.processes} "
                f"processes x WAYMARK_DB_POOL_SIZE={self.pool_size}); PostgreSQL "
                f"max_connections={self.max_connections}, {self.usable} usable after "
                f"{self.reserved} reserved: room for {self.max_nodes} such node(s)")

    def problem(self) -> str | None:
        if self.max_nodes >= 1:
            return None
        return (f"one node may open {self.per_node} PostgreSQL connections, more than the "
                f"{self.usable} usable of max_connections={self.max_connections}: lower "
                "WAYMARK_DB_POOL_SIZE or WAYMARK_WORKERS, raise max_connections, or put "
                "PgBouncer in front (docs/operations/scaling.md, PostgreSQL connections)")


def connection_budget(settings: Settings, conn: Connection) -> ConnectionBudget:
    max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
    reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    return ConnectionBudget(processes=settings.workers + 1, pool_size=settings.db_pool_size,
                            max_connections=max_connections, reserved=reserved + HEADROOM)
