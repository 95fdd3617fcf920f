"""The one binary layout of everything the browser reads from this app: the decoder bundle
(``export``), the map's points (``store``) and each live view's settings (``ui/live.py``).

    bytes 0-3   the header's length n, uint32 little-endian
    bytes 4..   the header: n bytes of UTF-8 JSON, ending in spaces so that 4 + n is a
                multiple of 4 (JSON allows them)
    then        the payload, which therefore starts on a 4-byte boundary: the browser views
                its float32 and int32 arrays in place, without copying

The browser's reader is ``readFramed`` in ``ui/live/decoder.js``.

>>> data = pack({"count": 2}, b"\\x01\\x02")
>>> data[:4], unpack(data)
(b'\\x0c\\x00\\x00\\x00', ({'count': 2}, 16))
"""

from __future__ import annotations

import json


def pack(header: dict, *payload: bytes) -> bytes:
    """``header`` as JSON in the layout above, followed by the ``payload`` bytes."""
    encoded = json.dumps(header).encode()
    encoded += b" " * (-(4 + len(encoded)) % 4)
    return b"".join([len(encoded).to_bytes(4, "little"), encoded, *payload])


def unpack(data: bytes) -> tuple[dict, int]:
    """``(header, start)``: the JSON header and the offset where the payload starts.

    ``start`` is rounded up to 4 bytes, so bundles written before the padding counted in
    the length read the same."""
    length = int.from_bytes(data[:4], "little")
    return json.loads(bytes(data[4:4 + length])), -(-(4 + length) // 4) * 4
