"""Helpers for the waymark.formats tests: locating and describing the geodata corpus.

A uniquely named module (not ``conftest``) so test files can import it without
clashing with other packages' conftest modules."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import GEO_DATA

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = GEO_DATA
EXTENSIONS = {".csv", ".geojson", ".json", ".gpx", ".kml", ".kmz"}


def corpus_files() -> list[str]:
    """Relative paths of every data file in the corpus (sorted)."""
    if not DATA_DIR.is_dir():
        return []
    out = []
    for path in sorted(DATA_DIR.rglob("*")):
        rel = path.relative_to(DATA_DIR).as_posix()
        if (path.is_file() and path.suffix.lower() in EXTENSIONS and "/" in rel
                and not rel.startswith("LICENSES/")):
            out.append(rel)  # top-level files (sanity-check.json) are not data
    return out


def parse_gdal_summary(text: str) -> dict[str, dict]:
    """Compact summary section -> {rel_path: {"count": int, "kml_driver": int | None, ...}}."""
    section = text.split("# GDAL reference summary", 1)[0]
    result: dict[str, dict] = {}
    current = None
    for line in section.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            current = line.strip()
            continue
        info = line.strip()
        if current is None or current in result and "count" in result[current]:
            continue
        entry: dict = {}
        if info.startswith("GPX:"):
            nums = dict(re.findall(r"(\w+) (\d+)", info[4:]))
            entry = {k: int(v) for k, v in nums.items()}
            entry["count"] = entry["waypoints"] + entry["routes"] + entry["tracks"]
        elif info.startswith(("CSV:", "GeoJSON:")):
            entry["count"] = int(re.search(r"= (\d+) \(", info).group(1))
        elif info.startswith("LIBKML:"):
            libkml, _, kml = info.partition("| KML driver (LIBKML skipped):")
            total = re.search(r"(\d+) features in total", libkml)
            entry["count"] = (int(total.group(1)) if total
                              else sum(int(n) for n in re.findall(r"= (\d+) \(", libkml)))
            m = re.search(r"(\d+) features in", kml)
            entry["kml_driver"] = int(m.group(1)) if m else None
        else:
            continue
        result[current] = entry
    return result
