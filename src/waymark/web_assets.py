"""The browser bundle: logical name -> content-hashed file, and serving those files.

`npm run build` (frontend/build.mjs) writes src/waymark/static/dist/ with hashed files, a
.gz and a .br copy of each text file, and manifest.json ({"main.js": "main-HASH.js", ...},
made from the esbuild metafile). Pages ask `asset_url("main.js")`; the files are served
with `immutable` caching (a new build means new names) and precompressed when the browser
accepts it, so no request pays for compression.
"""

from __future__ import annotations

import mimetypes
import os
import subprocess
import threading
from pathlib import Path

from litestar import Request, Response, get

from waymark import jsonutil
from waymark.basemaps.ranges import byte_range, partial_response
from waymark.errors import NotFound

DIST = Path(__file__).resolve().parent / "static" / "dist"
REPO_ROOT = Path(__file__).resolve().parents[2]
IMMUTABLE = "public, max-age=31536000, immutable"
BUILD_HINT = "run `npm ci && npm run build` in the repository root"
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
UNHASHED = {"manifest.json", "gazetteer.json"}


class AssetsMissing(RuntimeError):
    """The bundle has not been built."""


class Manifest:
    """manifest.json, re-read when a rebuild changes it (so `npm run watch` just works)."""

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist
        self._mtime: float | None = None
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def names(self) -> dict[str, str]:
        path = self.dist / "manifest.json"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise AssetsMissing(f"front-end assets are not built ({path} is missing): {BUILD_HINT}") \
                from None
        with self._lock:
            if mtime != self._mtime:
                self._names = jsonutil.loads(path.read_bytes())
                self._mtime = mtime
            return self._names

    def url(self, name: str) -> str:
        try:
            return "/static/dist/" + self.names()[name]
        except KeyError:
            raise AssetsMissing(f"no asset named {name!r} in the manifest: {BUILD_HINT}") from None


MANIFEST = Manifest()


def asset_url(name: str) -> str:
    return MANIFEST.url(name)


def gazetteer_path() -> Path:
    """The offline gazetteer built with the basemap (read on the first place search)."""
    return DIST / "basemap" / "gazetteer.json"


def assets_built(dist: Path = DIST) -> bool:
    return (dist / "manifest.json").is_file()


def build_assets(root: Path = REPO_ROOT, *, install: bool | None = None) -> None:
    """Build the bundle: `npm ci` (when node_modules is missing) then `npm run build`."""
    if install is None:
        install = not (root / "node_modules" / ".package-lock.json").is_file()
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
    if install:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"],  # noqa: S607  # nosec B607 - dev build, npm from PATH
                       cwd=root, check=True, env=env)
    subprocess.run(["npm", "run", "build"], cwd=root, check=True, env=env)  # noqa: S607  # nosec B607 - as above


# ---- serving --------------------------------------------------------------------------
_cache: dict[tuple[str, str], bytes] = {}


def _read(path: Path) -> bytes:
    key = (str(path), str(path.stat().st_mtime_ns))
    data = _cache.get(key)
    if data is None:
        data = path.read_bytes()
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = data
    return data


def _accepts(request: Request) -> set[str]:
    """Content codings the client accepts (q=0 means "not this one")."""
    out = set()
    for part in request.headers.get("accept-encoding", "").split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if name and q > 0:
            out.add(name.lower())
    return out


@get("/static/dist/{path:path}", include_in_schema=False, sync_to_thread=False)
def serve_dist(request: Request, path: str) -> Response:
    """A built file, precompressed (br or gzip) when accepted; hashed names cache forever."""
    root = DIST.resolve()
    relative = path.lstrip("/")
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix in (".gz", ".br"):
        raise NotFound("no such file")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type += "; charset=utf-8" if "charset" not in media_type else ""
    cache = "no-cache" if target.name in UNHASHED else IMMUTABLE
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff"}
    if target.suffix == ".pmtiles":  # a tile archive: read piecewise by the basemap
        data = _read(target)
        span = byte_range(request.headers.get("range"), len(data))
        headers["Accept-Ranges"] = "bytes"
        if span is None:
            return Response(data, media_type=media_type, headers=headers)
        return partial_response(data[span[0]:span[1] + 1], span[0], len(data), media_type, headers)
    accepted = _accepts(request)
    for encoding, suffix in _ENCODINGS:
        packed = target.with_name(target.name + suffix)
        if encoding in accepted and packed.is_file():
            headers["Content-Encoding"] = encoding
            return Response(_read(packed), media_type=media_type, headers=headers)
    return Response(_read(target), media_type=media_type, headers=headers)


ROUTES = [serve_dist]
