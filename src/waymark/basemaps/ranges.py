"""HTTP range requests (RFC 9110 §14): what PMTiles readers use to fetch one directory or
tile out of an archive. One range per request, as those readers send."""

from __future__ import annotations

import re

from litestar import Response

from waymark.errors import ApiError

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(ApiError):
    status_code = 416
    code = "range_not_satisfiable"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a `Range: bytes=…` header, None for the whole file.

    A malformed or multi-range header is ignored (the whole file, as RFC 9110 allows); a range
    that starts past the end is 416."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        length = int(match[2])
        if length == 0:
            raise RangeNotSatisfiable(f"empty suffix range for a {size}-byte file",
                                      headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - length), size - 1
    first = int(match[1])
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(f"range starts at byte {first} of a {size}-byte file",
                                  headers={"Content-Range": f"bytes */{size}"})
    return first, last


def partial_response(body: bytes, first: int, size: int, media_type: str,
                     headers: dict[str, str]) -> Response:
    """206 with Content-Range for `body`, which is bytes first..first+len-1 of `size`."""
    return Response(body, status_code=206, media_type=media_type, headers={
        **headers, "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {first}-{first + len(body) - 1}/{size}"})
