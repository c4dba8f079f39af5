"""Padding and truncation match keras.utils.pad_sequences; buckets are bounded and ordered."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.errors import ConfigError
from training.preprocessing import (
    SequenceSpec,
    TextPreprocessor,
    bucket_for,
    length_buckets,
    pad_sequences,
)
from training.tokenizer import Tokenizer

keras = pytest.importorskip("keras")

sequences = st.lists(st.lists(st.integers(1, 1000), max_size=30), min_size=1, max_size=10)


@settings(max_examples=200, deadline=None)
@given(
    sequences,
    st.integers(1, 25),
    st.sampled_from(["pre", "post"]),
    st.sampled_from(["pre", "post"]),
)
def test_pad_sequences_matches_keras(
    seqs: list[list[int]], maxlen: int, padding: str, truncating: str
) -> None:
    ours = pad_sequences(seqs, maxlen, padding=padding, truncating=truncating)  # type: ignore[arg-type]
    theirs = keras.utils.pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
    assert ours.shape == (len(seqs), maxlen)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, theirs)


def test_preprocessor_shape_and_bucket_padding() -> None:
    tokenizer = Tokenizer.fit(["one two three four five six"])
    preprocessor = TextPreprocessor(tokenizer, SequenceSpec(maxlen=4))
    encoded = preprocessor.encode(["one two three four five six", "two"])
    assert encoded == [[4, 5, 6, 7], [3]]  # truncating="pre" keeps the end
    full = preprocessor.pad(encoded)
    assert full.shape == (2, 4)
    np.testing.assert_array_equal(preprocessor.pad([[3]], 2), [[3, 0]])
    np.testing.assert_array_equal(preprocessor.transform(["two"]), [[3, 0, 0, 0]])
    with pytest.raises(ConfigError):
        preprocessor.pad(encoded, 5)


@pytest.mark.parametrize(
    "kwargs", [{"maxlen": 0}, {"maxlen": 5, "padding": "middle"}, {"maxlen": 5, "truncating": "x"}]
)
def test_sequence_spec_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SequenceSpec(**kwargs)  # type: ignore[arg-type]


@given(st.integers(1, 5000))
def test_buckets_are_bounded_increasing_and_end_at_maxlen(maxlen: int) -> None:
    buckets = length_buckets(maxlen)
    assert buckets[-1] == maxlen
    assert list(buckets) == sorted(set(buckets))
    assert len(buckets) <= 20
    for length in range(1, min(maxlen, 600) + 1):
        bucket = bucket_for(length, buckets)
        assert length <= bucket <= maxlen
