"""Token ids -> padded batches: the one path from text to model input, for training and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal, TypeVar

import numpy as np

from training.errors import ConfigError
from training.tokenizer import Tokenizer

Side = Literal["pre", "post"]
SIDES: tuple[Side, ...] = ("pre", "post")
Item = TypeVar("Item")


@dataclass(frozen=True)
class SequenceSpec:
    """How encoded texts become fixed-length rows: length cap and which side pads/truncates."""

    maxlen: int
    padding: Side = "post"  # post keeps masks right-aligned: cuDNN-eligible, pad-length exact
    truncating: Side = "pre"  # pre keeps a long review's ending, where the verdict usually is

    def __post_init__(self) -> None:
        if self.maxlen < 1:
            raise ConfigError(f"maxlen must be >= 1, got {self.maxlen}")
        if self.padding not in SIDES or self.truncating not in SIDES:
            raise ConfigError(
                f"padding and truncating must be 'pre' or 'post', "
                f"got {self.padding!r} / {self.truncating!r}"
            )


def truncate(ids: list[Item], maxlen: int, truncating: Side) -> list[Item]:
    """Cut ``ids`` to at most ``maxlen``, dropping from the start ('pre') or the end ('post')."""
    if len(ids) <= maxlen:
        return ids
    return ids[-maxlen:] if truncating == "pre" else ids[:maxlen]


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    maxlen: int,
    *,
    padding: Side = "post",
    truncating: Side = "pre",
) -> np.ndarray:
    """Return an int32 ``(len(sequences), maxlen)`` array, as ``keras.utils.pad_sequences`` does."""
    kept = [
        ids if len(ids) <= maxlen else truncate(list(ids), maxlen, truncating) for ids in sequences
    ]
    lengths = np.fromiter((len(ids) for ids in kept), dtype=np.int64, count=len(kept))
    total = int(lengths.sum())
    batch = np.zeros((len(kept), maxlen), dtype=np.int32)
    if total == 0:
        return batch
    # One scatter of all ids instead of a Python-level copy per row (~3x faster on IMDB).
    flat = np.fromiter(chain.from_iterable(kept), dtype=np.int32, count=total)
    rows = np.repeat(np.arange(len(kept)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    columns = np.arange(total) - starts
    if padding == "pre":
        columns += np.repeat(maxlen - lengths, lengths)
    batch[rows, columns] = flat
    return batch


class TextPreprocessor:
    """Tokenizer + sequence spec: texts -> id lists -> padded int32 batch."""

    def __init__(self, tokenizer: Tokenizer, spec: SequenceSpec) -> None:
        self.tokenizer = tokenizer
        self.spec = spec

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Return each text's ids, already truncated to ``maxlen`` (not padded).

        A text with no tokens (``""``, ``"<br />"``) becomes one OOV id: an all-padding row
        has no defined output under masking (mean pooling divides by zero).
        """
        spec = self.spec
        empty = [] if self.tokenizer.oov_index is None else [self.tokenizer.oov_index]
        return [
            truncate(self.tokenizer.encode(text), spec.maxlen, spec.truncating) or empty
            for text in texts
        ]

    def pad(self, encoded: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
        """Pad already-encoded texts to ``length`` (default ``maxlen``).

        With post padding and a masked model, any ``length`` >= the longest text gives the same
        scores as ``maxlen``; that is what lets the service pad a batch only to its bucket.
        """
        length = self.spec.maxlen if length is None else length
        if length > self.spec.maxlen:
            raise ConfigError(f"cannot pad to {length}, beyond maxlen {self.spec.maxlen}")
        return pad_sequences(
            encoded, length, padding=self.spec.padding, truncating=self.spec.truncating
        )

    def transform(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """Return the padded int32 batch for ``texts``: what the model is fed in training."""
        return self.pad(self.encode(texts), length)


def length_buckets(maxlen: int, *, smallest: int = 16, growth: float = 1.5) -> tuple[int, ...]:
    """Return the bucket lengths a batch is padded up to: ~1.5x apart, multiples of 16, to maxlen.

    Few buckets bound the number of shapes TensorFlow compiles and warms up; the growth factor
    bounds padding waste to under half of a batch.
    """
    buckets: list[int] = []
    length = smallest
    while length < maxlen:
        buckets.append(length)
        length = max(length + 16, -(-int(length * growth) // 16) * 16)
    buckets.append(maxlen)
    return tuple(buckets)


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    """Return the smallest bucket >= ``length`` (the last bucket when none is)."""
    for bucket in buckets:
        if bucket >= length:
            return bucket
    return buckets[-1]
