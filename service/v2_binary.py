"""Triton's binary tensor data extension: a JSON header, then raw tensor bytes in one body.

``Inference-Header-Content-Length`` gives the JSON header's length; each binary tensor follows
in the order of the tensors in the header, ``binary_data_size`` bytes each. A BYTES element is
a 4-byte little-endian unsigned length, then that many bytes. Every length here comes from the
client, so each is checked against what is really there before it is used.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

from service.errors import InvalidInferenceRequest

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"
_ELEMENT_LENGTH = struct.Struct("<I")
# More digits than any body this server accepts; keeps int() away from huge strings.
_MAX_LENGTH_DIGITS = 19


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """Return (JSON header, binary section); without the header the whole body is JSON."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    # isdigit() alone accepts non-ASCII digits, int() accepts "+1" and "1_0": neither is HTTP.
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_LENGTH_DIGITS):
        raise InvalidInferenceRequest(f"{HEADER_LENGTH} must be a non-negative integer")
    length = int(text)
    if length > len(body):
        raise InvalidInferenceRequest(
            f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes"
        )
    return body[:length], body[length:]


def split_tensors(binary: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut the binary section into one chunk per size; the sizes must cover it exactly."""
    total = sum(sizes)
    if total != len(binary):
        raise InvalidInferenceRequest(
            f"binary_data_size adds up to {total} bytes but {len(binary)} bytes follow the "
            "JSON header"
        )
    chunks = []
    start = 0
    for size in sizes:
        chunks.append(binary[start : start + size])
        start += size
    return chunks


def decode_bytes(chunk: bytes, count: int) -> list[bytes]:
    """Return the ``count`` length-prefixed BYTES elements that fill ``chunk`` exactly."""
    view = memoryview(chunk)
    elements: list[bytes] = []
    offset = 0
    while offset < len(view):
        if len(elements) == count:
            raise InvalidInferenceRequest(
                f"binary BYTES data holds more than the {count} elements of its shape"
            )
        if offset + _ELEMENT_LENGTH.size > len(view):
            raise InvalidInferenceRequest("binary BYTES data ends inside an element's length")
        (length,) = _ELEMENT_LENGTH.unpack_from(view, offset)
        offset += _ELEMENT_LENGTH.size
        if offset + length > len(view):
            raise InvalidInferenceRequest(
                f"binary BYTES element {len(elements)} claims {length} bytes, past the end of "
                "its tensor"
            )
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    if len(elements) != count:
        raise InvalidInferenceRequest(
            f"binary BYTES data holds {len(elements)} elements, its shape says {count}"
        )
    return elements


def encode_bytes(elements: Iterable[bytes]) -> bytes:
    """Return BYTES elements, each prefixed with its 4-byte little-endian length."""
    return b"".join(_ELEMENT_LENGTH.pack(len(element)) + element for element in elements)


def encode_fp32(values: np.ndarray) -> bytes:
    """Return ``values`` as little-endian float32, row-major."""
    return np.ascontiguousarray(values, dtype="<f4").tobytes()
