"""What a node keeps for itself: state on its own disk or in its own memory.

On one machine that is the design (SQLite, a local object directory, in-process caches).
Past one machine every node must be disposable: anything listed here is lost with the node
and invisible to the others, so with a shared database `waymark check --deploy` refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from waymark.settings import Settings


@dataclass(frozen=True)
class NodeLocal:
    what: str  # the piece of state
    where: str  # where this node keeps it
    fix: str  # the setting that makes it shared

    def __str__(self) -> str:
        return f"{self.what}: {self.where} (shared: {self.fix})"


def _is_local_url(url: str) -> bool:
    return url.startswith(("file:", "/", "memory:")) or "://" not in url


def node_local_state(settings: Settings) -> list[NodeLocal]:
    """Every piece of state that would stay on (or die with) this node, with its fix."""
    found: list[NodeLocal] = []
    if settings.is_sqlite:
        found.append(NodeLocal("database", settings.resolved_database_url,
                               "WAYMARK_DATABASE_URL=postgresql+psycopg://..."))
    if _is_local_url(settings.resolved_object_store_url):
        found.append(NodeLocal("object storage", settings.resolved_object_store_url,
                               "WAYMARK_OBJECT_STORE_URL=s3://bucket/prefix?endpoint=..."))
    if settings.encrypt_objects and settings.master_key_source == "local-file":
        found.append(NodeLocal("master key", str(settings.resolved_master_key_path),
                               "WAYMARK_MASTER_KEY_FILE (a mounted secret) or "
                               "WAYMARK_KMS_KEY_ID"))
    if not settings.redis_url:
        sessions = (f"files in {settings.data_dir / 'sessions'}"
                    if settings.session_store == "file" else "process memory")
        found += [
            NodeLocal("sessions", sessions, "WAYMARK_REDIS_URL"),
            NodeLocal("job queue", str(settings.data_dir / "jobs.db"), "WAYMARK_REDIS_URL"),
            NodeLocal("real-time edits, presence, rate limits, response cache",
                      "process memory", "WAYMARK_REDIS_URL"),
        ]
    if settings.backup_url and _is_local_url(settings.backup_url):
        found.append(NodeLocal("backup target", settings.backup_url,
                               "WAYMARK_BACKUP_URL=s3://... (or a volume every node mounts)"))
    if _is_local_url(settings.resolved_archive_url):
        found.append(NodeLocal("archive", settings.resolved_archive_url,
                               "WAYMARK_ARCHIVE_URL or an s3:// WAYMARK_BACKUP_URL"))
    return found


def shared_database_problems(settings: Settings) -> list[str]:
    """With a shared database, every piece of node-local state is a problem (the node is one
    of several, or will be); on SQLite it is the single-machine design and only listed."""
    if settings.is_sqlite:
        return []
    return [f"node-local {item.what} with a shared database: {item.where}; set {item.fix}"
            for item in node_local_state(settings)]
