"""Shapefile in a zip: read (``.shp/.shx/.dbf``, optional ``.prj/.cpg``) and write.

Reading: every ``.shp`` in the archive (any folder) is a layer; its ``.shx`` and ``.dbf``
must sit next to it. Only those five members are inflated (with the archive limits of
``archive.py``) and handed to GDAL in a fresh zip, so nothing else in the upload (a
``.vrt``, a second dataset) is ever opened. The ``.prj`` gives the coordinate system.

Writing: a Shapefile holds one geometry type and names of at most 10 bytes. Each layer is
written as one file per geometry type present (``<layer>_points``, ``_lines``,
``_polygons``, ``_multipoints``, with ``_3d`` for those with elevations; features without
geometry go to a ``.dbf`` alone); a
GeometryCollection is split into its members, each with the feature's attributes.
Attribute names are truncated (and made unique) and the archive's ``fields.csv`` lists
every ``file, layer, field, shapefile_field``: people see what was renamed, and this
reader puts the original names and layer grouping back. Strings longer than 254 bytes
are cut by the format (a limit of the ``.dbf``).
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

from waymark.formats import archive
from waymark.formats._writer_util import split_geometry
from waymark.formats.crs import SourceCrs, from_wgs84
from waymark.formats.model import (
    ExportLayer,
    FormatError,
    ImportResult,
    ParsedLayer,
    ReadOptions,
    WarningCollector,
)
from waymark.formats.ogr_io import has_z, read_layer, scratch_dir, write_layer

DRIVER = "ESRI Shapefile"
MANIFEST = "fields.csv"
_SHP_MAGIC = b"\x00\x00\x27\x0a"
_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_KINDS = {"Point": "points", "MultiPoint": "multipoints", "LineString": "lines",
          "MultiLineString": "lines", "Polygon": "polygons", "MultiPolygon": "polygons"}
_GDAL_TYPE = {"points": "Point", "multipoints": "MultiPoint", "lines": "LineString",
              "polygons": "Polygon", "none": "None"}


# ---- reading ---------------------------------------------------------------------------
def read_shapefile(data: bytes, *, skip_invalid: bool = False,
                   options: ReadOptions | None = None) -> ImportResult:
    options = options or ReadOptions()
    warnings = WarningCollector()
    with archive.open_zip(data, "Shapefile") as zf:
        members = archive.files(zf)
        by_name = {m.filename.lower(): m for m in members}
        inflater = archive.Inflater(zf)
        manifest = _manifest(inflater, by_name.get(MANIFEST))
        layers: dict[str, ParsedLayer] = {}
        reprojected = None
        for main, infos in datasets(members):
            parts = {ext: inflater.read(info) for ext, info in infos.items()}
            if ".shp" in parts and parts[".shp"][:4] != _SHP_MAGIC:
                raise FormatError("not a Shapefile .shp (bad file header)", member=main.filename)
            _check_dbf(parts[".dbf"], infos[".dbf"].filename,
                       (len(parts[".shx"]) - 100) // 8 if ".shx" in parts else None)
            base = posixpath.basename(main.filename[:-4])
            layer, crs_from = read_layer(
                _flat_zip(parts), driver=DRIVER, what="Shapefile", layer=None, options=options,
                skip_invalid=skip_invalid, warnings_out=warnings, name=base,
                location={"member": main.filename})
            reprojected = reprojected or crs_from
            _restore(layer, manifest.get(base.lower()))
            group = layers.setdefault(layer.name or base, ParsedLayer(layer.name or base))
            group.features.extend(layer.features)
    return ImportResult(list(layers.values()), warnings.result(), reprojected)


def datasets(members: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, dict[str, Any]]]:
    """(main member, {extension: member}) for each .shp (and each .dbf without one)."""
    by_name = {m.filename.lower(): m for m in members}
    shps = [m for m in members if m.filename.lower().endswith(".shp")]
    if not shps:
        raise FormatError("the zip holds no .shp file (a Shapefile is a .shp with its "
                          ".shx and .dbf)")
    stems = {m.filename.lower()[:-4] for m in shps}
    tables = [m for m in members  # a .dbf alone: features without geometry
              if m.filename.lower().endswith(".dbf") and m.filename.lower()[:-4] not in stems]
    out = []
    for main in sorted(shps + tables, key=lambda m: m.filename):
        stem = main.filename[:-4]
        needed = (".shx", ".dbf") if main in shps else (".dbf",)
        infos = {}
        for ext in _PARTS:
            info = by_name.get((stem + ext).lower())
            if info is None and ext in needed:
                raise FormatError(f"{posixpath.basename(stem)}{ext} is missing next to it "
                                  "(a Shapefile needs .shp, .shx and .dbf)", member=main.filename)
            if info is not None:
                infos[ext] = info
        out.append((main, infos))
    return out


def _check_dbf(dbf: bytes, name: str, shapes: int | None) -> None:
    """GDAL reads a damaged .dbf as a table without columns: refuse it instead, so that no
    import silently loses every attribute."""
    if len(dbf) < 32:
        raise FormatError("the .dbf is too short to be a dBASE table", member=name)
    records, header_len, record_len = struct.unpack("<IHH", dbf[4:12])
    if header_len < 33 or record_len < 1 or header_len + records * record_len > len(dbf):
        raise FormatError("the .dbf header does not match the file (truncated, or not a "
                          "dBASE table)", member=name)
    if shapes is not None and records != shapes:
        raise FormatError(f"the .dbf has {records} rows for {shapes} shapes", member=name)


def check_shapefile(data: bytes) -> None:
    """The archive's structure (members, names, parts present), without inflating it."""
    with archive.open_zip(data, "Shapefile") as zf:
        datasets(archive.files(zf))


def _flat_zip(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
        for ext, content in parts.items():
            out.writestr("layer" + ext, content)
    return buf.getvalue()


def _manifest(inflater: archive.Inflater, info: zipfile.ZipInfo | None) -> dict[str, dict[str, Any]]:
    """{file stem: {"layer": name, "fields": {shapefile_field: field}}} from fields.csv."""
    if info is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    try:
        rows = csv.DictReader(io.StringIO(inflater.read(info).decode("utf-8-sig")))
        for row in rows:
            entry = out.setdefault((row.get("file") or "").lower(),
                                   {"layer": row.get("layer"), "fields": {}})
            if row.get("shapefile_field"):
                entry["fields"][row["shapefile_field"]] = row.get("field") or row["shapefile_field"]
    except (UnicodeDecodeError, csv.Error):
        return {}  # someone else's fields.csv: not ours to interpret
    return out


def _restore(layer: ParsedLayer, entry: dict[str, Any] | None) -> None:
    if not entry:
        return
    if entry.get("layer"):
        layer.name = entry["layer"]
    names = entry["fields"]
    if any(k != v for k, v in names.items()):
        for f in layer.features:
            f.properties = {names.get(k, k): v for k, v in f.properties.items()}


# ---- writing ---------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text or "").strip("_")[:40] or "layer"


def short_names(keys: list[str]) -> list[str]:
    """Unique .dbf field names of at most 10 bytes (UTF-8) for ``keys``, in order."""
    used: set[str] = set()
    out = []
    for key in keys:
        base = _cut(key.strip() or "field", 10)
        name, n = base, 1
        while name.lower() in used:
            suffix = f"_{n}"
            name = _cut(base, 10 - len(suffix)) + suffix
            n += 1
        used.add(name.lower())
        out.append(name)
    return out


def _cut(text: str, size: int) -> str:
    raw = text.encode("utf-8")[:size]
    return raw.decode("utf-8", errors="ignore")


def _groups(layer: ExportLayer) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in layer.features:
        parts = split_geometry(f.get("geometry"))
        if not parts:
            groups.setdefault("none", []).append(f)
        for geom in parts:  # a file is 2D or 3D: mixed layers get a "_3d" file too
            kind = _KINDS[geom["type"]] + ("_3d" if has_z(geom) else "")
            groups.setdefault(kind, []).append({**f, "geometry": geom})
    return groups


def write_shapefile(layers: list[ExportLayer], crs: SourceCrs | None = None) -> bytes:
    transform = from_wgs84(crs) if crs is not None else None
    rows: list[list[str]] = []
    renamed = 0
    buf = io.BytesIO()
    used: set[str] = set()
    with scratch_dir() as tmp, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for layer in layers:
            groups = _groups(layer)
            stem = _unique(_slug(layer.name), used)
            for kind, features in groups.items() or [("points", [])]:  # empty: a .shp of 0
                file_stem = stem if len(groups) == 1 else f"{stem}_{kind}"
                keys = list(dict.fromkeys(
                    k for f in features for k in (f.get("properties") or {})))
                names = short_names(keys)
                renamed += sum(k != n for k, n in zip(keys, names, strict=False))
                gtype = _GDAL_TYPE[kind.removesuffix("_3d")]
                if kind.endswith("_3d"):
                    gtype += " Z"
                write_layer(Path(tmp) / f"{file_stem}.shp", file_stem, features, driver=DRIVER,
                            geometry_type=gtype, crs=crs, transform=transform, keys=keys,
                            field_names=names)
                for path in sorted(Path(tmp).glob(f"{file_stem}.*")):
                    out.write(path, path.name)
                    path.unlink()
                rows += [[file_stem, layer.name, k, n] for k, n in zip(keys, names, strict=False)] or [
                    [file_stem, layer.name, "", ""]]
        table = io.StringIO(newline="")
        writer = csv.writer(table, lineterminator="\r\n")
        writer.writerow(["file", "layer", "field", "shapefile_field"])
        writer.writerows(rows)
        out.writestr(MANIFEST, table.getvalue())
        out.writestr("README.txt", _readme(renamed))
    return buf.getvalue()


def _unique(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name.lower() in used:
        n += 1
        name = f"{stem}_{n}"
    used.add(name.lower())
    return name


def _readme(renamed: int) -> str:
    return ("Exported by Waymark as ESRI Shapefiles: one set of .shp/.shx/.dbf/.prj/.cpg per "
            "layer and geometry type.\r\n"
            "Shapefile attribute names have at most 10 characters: fields.csv lists every "
            f"original name and the name used in the .dbf ({renamed} renamed).\r\n"
            "Text attributes longer than 254 bytes are cut by the format.\r\n")
