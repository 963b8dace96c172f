"""CPU time of one single-feature edit through the edit function itself, in one process.

    .venv/bin/python bench/edit_cpu.py [--edits 2000] [--rounds 5] [--path core|orm]
    BENCH_SRC=<rev> .venv/bin/python bench/edit_cpu.py      # another commit's src/

No HTTP, no server, no concurrency: a migrated SQLite file with one map, one layer and 1,000
points; each edit is one write transaction running a properties-only update with the version
the client knows, as a PATCH or a websocket edit does after the framework. `--path core` is
the Core-statement edit the HTTP routes use (`feature_write.apply_feature_edit`, or
`update_feature` in code before decision 0020); `--path orm` is `load_map` + `LayerEditor`,
the way websocket edits and batches were applied before that decision. The figure is process
CPU time per edit (min and all rounds), which other load on the machine disturbs far less
than latency: a way to compare two versions of the edit path on a busy machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _common as c

pinned = c.pinned_src()
if pinned is not None:
    sys.path.insert(0, str(pinned))

from waymark import jsonutil  # noqa: E402 - after choosing which src/ to import
from waymark.accounts.actor import Actor  # noqa: E402
from waymark.accounts.service import create_user  # noqa: E402
from waymark.db.engine import Database  # noqa: E402
from waymark.db.migrate import upgrade  # noqa: E402
from waymark.db.models import Feature, Layer  # noqa: E402
from waymark.maps import feature_write  # noqa: E402
from waymark.maps.service import create_map  # noqa: E402


def setup(db: Database, n: int) -> tuple[Actor, str, str, list[str]]:
    with db.write() as s:
        user = create_user(s, "bench@example.com", "correct horse battery staple", "Bench")
        s.flush()
        map_ = create_map(s, user.id, {"title": "edit cpu"})
        s.flush()
        layer = s.query(Layer).filter(Layer.map_id == map_.id).one()
        ids = [str(uuid.uuid4()) for _ in range(n)]
        for i, fid in enumerate(ids):
            x, y = i % 90, i % 45
            s.add(Feature(uuid=fid, layer_id=layer.id, properties="{}", version=1,
                          geometry=jsonutil.dumps({"type": "Point", "coordinates": [x, y]}),
                          minx=x, miny=y, maxx=x, maxy=y))
        actor = Actor(user.id, user.email, user.display_name, "token", "write")
        return actor, map_.public_id, layer.public_id, ids


def editor(db: Database, actor: Actor, map_id: str, layer_id: str, path: str) -> Any:
    """edit(feature id, properties, expected version) -> new version, through `path`."""
    def core(fid: str, props: dict[str, Any], version: int) -> int:
        with db.write() as s:
            conn = s.connection()
            if hasattr(feature_write, "apply_feature_edit"):
                edited = feature_write.apply_feature_edit(conn, actor, map_id, layer_id,
                                                          feature_write.FeatureEdit(
                                                              "update", fid, properties=props,
                                                              expected_version=version))
            else:  # before decision 0020
                edited = feature_write.update_feature(conn, actor, map_id, layer_id, fid,
                                                      properties=props, expected_version=version)
            return int(edited.feature["version"])

    def orm(fid: str, props: dict[str, Any], version: int) -> int:
        from waymark.maps import layers as layer_ops
        from waymark.maps.access import load_map
        from waymark.maps.editing import LayerEditor

        with db.write() as s:
            map_, _ = load_map(s, map_id, actor, "edit")
            edit = LayerEditor(s, map_, layer_ops.get_layer(s, map_, layer_id), actor.user_id)
            feature = edit.update(fid, properties=props, expected_version=version)
            edit.finish()
            return int(feature.version)

    return core if path == "core" else orm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=2000, help="edits per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--path", choices=["core", "orm"], default="core")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-editcpu-"))
    url = f"sqlite:///{tmp / 'waymark.db'}"
    upgrade(url)
    db = Database(url)
    try:
        actor, map_id, layer_id, ids = setup(db, 1000)
        edit = editor(db, actor, map_id, layer_id, args.path)
        versions = dict.fromkeys(ids, 1)

        def run(count: int) -> None:
            for i in range(count):
                fid = ids[i % len(ids)]
                versions[fid] = edit(fid, {"name": f"edit {i}"}, versions[fid])

        run(300)  # warm-up: statement caches, page cache
        per_edit = []
        for _ in range(args.rounds):
            t0 = time.process_time()
            run(args.edits)
            per_edit.append((time.process_time() - t0) * 1000 / args.edits)
        print(f"{c.code_version()}, path {args.path}: CPU ms/edit min {min(per_edit):.3f}; "
              f"rounds " + " ".join(f"{x:.3f}" for x in per_edit))
    finally:
        db.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
