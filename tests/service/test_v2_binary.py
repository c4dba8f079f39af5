"""The binary tensor data codec: round trips, and every hostile length refused as a 400."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidInferenceRequest
from service.v2_binary import (
    decode_bytes,
    encode_bytes,
    encode_fp32,
    split_body,
    split_tensors,
)


def element(payload: bytes, claimed: int | None = None) -> bytes:
    """Return one BYTES element whose length prefix says ``claimed`` (default: the truth)."""
    return struct.pack("<I", len(payload) if claimed is None else claimed) + payload


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_bytes_round_trip(elements: list[bytes]) -> None:
    assert decode_bytes(encode_bytes(elements), len(elements)) == elements


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=8))
def test_any_bytes_decode_or_refuse_cleanly(chunk: bytes, count: int) -> None:
    try:
        decoded = decode_bytes(chunk, count)
    except InvalidInferenceRequest:
        return  # a clean refusal: the app answers it as a 400
    assert len(decoded) == count
    assert encode_bytes(decoded) == chunk


def test_encoding_is_little_endian_length_then_bytes() -> None:
    assert encode_bytes([b"ab", b""]) == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


def test_fp32_is_little_endian_row_major() -> None:
    values = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float64)
    raw = encode_fp32(values)
    assert raw == struct.pack("<4f", 0.25, 0.75, 1.0, 0.0)


@pytest.mark.parametrize(
    ("chunk", "count", "says"),
    [
        (element(b"abc", claimed=4), 1, "past the end"),
        (element(b"abc", claimed=2**32 - 1), 1, "past the end"),  # huge: the largest uint32
        (element(b"abc")[:3], 1, "inside an element's length"),
        (element(b"abc") + b"\x01", 1, "more than the 1 elements"),
        (element(b"abc") + element(b"d"), 1, "more than the 1 elements"),
        (element(b"abc"), 2, "holds 1 elements, its shape says 2"),
        (b"", 1, "holds 0 elements"),
    ],
)
def test_malformed_bytes_are_refused(chunk: bytes, count: int, says: str) -> None:
    with pytest.raises(InvalidInferenceRequest, match=says):
        decode_bytes(chunk, count)


def test_split_body_by_header_length() -> None:
    assert split_body(b'{"a":1}xyz', "7") == (b'{"a":1}', b"xyz")
    assert split_body(b'{"a":1}', None) == (b'{"a":1}', b"")
    assert split_body(b'{"a":1}', " 7 ") == (b'{"a":1}', b"")


@pytest.mark.parametrize(
    "header", ["8", "-1", "+7", "7.0", "1e3", "0x7", "", "abc", "1_0", "\u0667", "9" * 40]
)
def test_split_body_refuses_bad_header_lengths(header: str) -> None:
    with pytest.raises(InvalidInferenceRequest):
        split_body(b'{"a":1}', header)


def test_split_tensors_needs_sizes_that_cover_the_section() -> None:
    assert split_tensors(b"abcdef", [2, 0, 4]) == [b"ab", b"", b"cdef"]
    assert split_tensors(b"", []) == []
    for sizes in ([2, 3], [7], [2**62], []):
        with pytest.raises(InvalidInferenceRequest, match="adds up to"):
            split_tensors(b"abcdef", sizes)
