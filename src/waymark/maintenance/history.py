"""The `history` maintenance job (off unless WAYMARK_HISTORY_KEEP_DAYS is set): compacts the
change history older than the window while every layer stays revertible to any version it
had inside the window.

Reverting a layer to version V reads only the changes made after V (maps/layers.py). So for
each layer, with V0 its version when the window began (its newest change older than the
window), the changes up to V0 are dropped and `layers.revertible_from` becomes V0: revert to
V0 or later works exactly as before; an older target is refused with `history_compacted`.
History of deleted layers and map-level entries older than the window go too.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from waymark.db.models import Change, Layer
from waymark.maintenance.jobs import Context, Outcome, delete_in_batches


def compact(ctx: Context) -> Outcome:
    days = ctx.settings.history_keep_days
    cutoff = ctx.now - timedelta(days=days)
    with ctx.db.read() as s:
        floors = s.execute(select(Change.layer_id, func.max(Change.layer_version))
                           .where(Change.created_at < cutoff, Change.layer_id.is_not(None),
                                  Change.layer_version.is_not(None))
                           .group_by(Change.layer_id)).all()
        existing = set(s.scalars(select(Layer.id)))
    removed, compacted = 0, 0
    for layer_id, floor in floors:
        if layer_id not in existing:
            removed += delete_in_batches(ctx.db, Change, Change.layer_id == layer_id,
                                         Change.created_at < cutoff)
            continue
        with ctx.db.write() as s:  # the floor first: no revert runs on half-deleted history
            s.execute(update(Layer).where(Layer.id == layer_id, Layer.revertible_from < floor)
                      .values(revertible_from=floor))
        gone = delete_in_batches(ctx.db, Change, Change.layer_id == layer_id,
                                 Change.layer_version <= floor)
        removed += gone
        compacted += 1 if gone else 0
    removed += delete_in_batches(ctx.db, Change, Change.layer_id.is_(None),
                                 Change.created_at < cutoff)
    return Outcome(removed, {"older_than_days": days, "layers_compacted": compacted})
