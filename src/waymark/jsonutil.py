"""Fast, compact JSON for stored geometry/properties and API bodies."""

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


def dumpb(value: Any) -> bytes:
    return _encoder.encode(value)


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    return _decoder.decode(text)
