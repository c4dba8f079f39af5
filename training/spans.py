"""Tokens with their character spans in the original text, for highlighting explanations.

The spans come from the tokenizer's own steps (the same lowercasing, the same ``<br />``
pattern, the same token regex or Keras split), run over the text with a map from each
processed character back to the original one; ``tests/training/test_spans.py`` checks that
the tokens and ids equal ``Tokenizer.encode``'s on hostile and Unicode inputs. Lowercasing
may lengthen a character (``"İ".lower()`` is two), so the map is built per character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.preprocessing import TextPreprocessor, truncate
from training.tokenizer import (
    _HTML_BREAK,  # the tokenizer's own patterns: one definition, never a copy
    _WORD_OR_SYMBOL,
    KerasLegacyStandardizer,
    Standardizer,
    WordStandardizer,
)


@dataclass(frozen=True)
class TokenSpan:
    """One token of the model's input: its text, id, and ``text[start:end]`` in the original."""

    token: str
    id: int
    start: int
    end: int


def _origins(text: str, processed_chars: Sequence[int]) -> list[int]:
    """Return, per processed character, the index of the original character it came from."""
    return [index for index, count in enumerate(processed_chars) for _ in range(count)]


def _lowered(text: str, lower: bool) -> tuple[str, list[int] | None]:
    """Return the text as the tokenizer lowercases it, and its origin map (None: identity)."""
    if not lower:
        return text, None
    lowered = text.lower()  # the whole text at once, as the tokenizer (final sigma: context)
    if len(lowered) == len(text):
        return lowered, None
    return lowered, _origins(text, [len(char.lower()) for char in text])


def raw_spans(standardizer: Standardizer, text: str) -> list[tuple[str, int, int]]:
    """Return ``(token, start, end)`` for every token ``standardizer.tokens(text)`` yields."""
    if isinstance(standardizer, WordStandardizer):
        lowered, origin = _lowered(text, True)
        # Same-length blanks instead of one space: the same tokens, positions kept.
        blanked = _HTML_BREAK.sub(lambda match: " " * len(match.group()), lowered)
        found = [(m.group(), m.start(), m.end()) for m in _WORD_OR_SYMBOL.finditer(blanked)]
    elif isinstance(standardizer, KerasLegacyStandardizer):
        lowered, origin = _lowered(text, standardizer.lower)
        found = _keras_spans(standardizer, lowered)
    else:
        raise TypeError(f"no span support for {type(standardizer).__name__}")
    if origin is None:
        return found
    return [(token, origin[start], origin[end - 1] + 1) for token, start, end in found]


def _keras_spans(standardizer: KerasLegacyStandardizer, text: str) -> list[tuple[str, int, int]]:
    if standardizer.char_level:
        return [(char, index, index + 1) for index, char in enumerate(text)]
    table: dict[int, str] = standardizer.__dict__["_table"]
    split = standardizer.split
    translated = text.translate(table)
    # A filter character becomes ``split``, which may be longer than one character.
    origin = (
        None
        if len(translated) == len(text)
        else _origins(text, [len(table.get(ord(char), char)) for char in text])
    )
    spans: list[tuple[str, int, int]] = []
    position = 0
    for piece in translated.split(split):
        if piece:
            start, end = position, position + len(piece)
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            spans.append((piece, start, end))
        position += len(piece) + len(split)
    return spans


def encode_spans(preprocessor: TextPreprocessor, text: str) -> list[TokenSpan]:
    """Return the tokens the model sees for ``text`` (ids, truncation as ``encode``), with spans.

    Unlike ``encode``, a text without tokens gives an empty list (nothing to attribute).
    """
    found = raw_spans(preprocessor.tokenizer.standardizer, text)
    ids = preprocessor.tokenizer.token_ids([token for token, _, _ in found])
    kept = [
        TokenSpan(token, index, start, end)
        for (token, start, end), index in zip(found, ids, strict=True)
        if index is not None
    ]
    spec = preprocessor.spec
    return truncate(kept, spec.maxlen, spec.truncating)
