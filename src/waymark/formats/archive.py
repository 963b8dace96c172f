"""Reading zip archives from untrusted uploads (Shapefile zips, KMZ) safely.

Why by hand and not ``ZipFile.extractall``: nothing is written to disk, member names
are checked (absolute paths and ``..`` are refused rather than silently flattened, so
the error names the member), and decompression is capped by what is actually
inflated, not by the sizes the archive claims (zip bombs lie in their headers).
"""

from __future__ import annotations

import io
import posixpath
import zipfile

from waymark.formats.model import FormatError

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # inflated bytes read from one archive
MAX_RATIO = 200  # inflated/compressed above this (and past 1 MB) is a zip bomb


def open_zip(data: bytes, kind: str) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise FormatError(f"not a valid {kind} (zip) file") from None
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise FormatError(f"{kind} archive has too many members ({len(infos)} > {MAX_MEMBERS})")
    for info in infos:
        check_member_name(info.filename)
    return zf


def check_member_name(name: str) -> None:
    """Refuse names that would escape a directory if anyone ever extracted the archive."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise FormatError("archive member has an absolute or Windows path", member=name)
    if any(part == ".." for part in name.split("/")):
        raise FormatError("archive member path leaves the archive ('..')", member=name)
    if "\x00" in name:
        raise FormatError("archive member name contains a NUL byte", member=name)


def files(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The file members, without directories and macOS resource forks (__MACOSX/, ._x)."""
    out = []
    for info in zf.infolist():
        base = posixpath.basename(info.filename)
        if info.is_dir() or info.filename.startswith("__MACOSX/") or base.startswith("._"):
            continue
        out.append(info)
    return out


class Inflater:
    """Reads members of one archive while counting every inflated byte against a budget."""

    def __init__(self, zf: zipfile.ZipFile, budget: int = MAX_TOTAL_BYTES) -> None:
        self.zf = zf
        self.left = budget
        self.budget = budget

    def read(self, info: zipfile.ZipInfo) -> bytes:
        name = info.filename
        if info.file_size > self.left:
            raise self._too_large(name)
        try:
            with self.zf.open(info) as fh:  # read with a cap: header sizes can lie
                out = fh.read(self.left + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
            raise FormatError(f"cannot decompress: {exc}", member=name) from None
        if len(out) > self.left:
            raise self._too_large(name)
        if len(out) > 1024 * 1024 and len(out) > MAX_RATIO * max(info.compress_size, 1):
            raise FormatError("member decompresses to more than "
                              f"{MAX_RATIO} times its size (zip bomb?)", member=name)
        self.left -= len(out)
        return out

    def _too_large(self, name: str) -> FormatError:
        return FormatError(f"archive is too large when decompressed (more than "
                           f"{self.budget // (1024 * 1024)} MB)", member=name)
