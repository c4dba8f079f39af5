"""Text -> token ids: the one tokenizer shared by training and serving.

Two standardizers turn a text into tokens:

* ``WordStandardizer`` (the default, ``"kind": "words"``): lowercase, replace HTML line breaks
  (``<br />`` and friends, common in scraped reviews) with a space, then keep runs of word
  characters (with inner apostrophes, so ``don't`` stays one token) and split every other
  non-space character off as a token of its own (``great!!`` -> ``great ! !``). Punctuation is
  kept because ``!`` and ``?`` carry sentiment.
* ``KerasLegacyStandardizer`` (``"kind": "keras_legacy"``): exactly what the Keras legacy
  ``Tokenizer`` does for a given ``filters`` / ``lower`` / ``split`` / ``char_level``, so a
  tokenizer saved with ``Tokenizer.to_json()`` encodes here as it did in Keras.

Ids follow the Keras convention: 0 is padding, the OOV token (if any) is 1, then words by
descending frequency (ties in first-seen order). ``num_words`` applies only when encoding: an id
``>= num_words`` becomes the OOV id, or is dropped when there is no OOV token.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from training.errors import TokenizerError

FORMAT_NAME = "sentiment-tokenizer"
FORMAT_VERSION = 1
DEFAULT_OOV_TOKEN = "[UNK]"
# The legacy Keras default: ASCII punctuation except the apostrophe, plus tab and newline.
KERAS_DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

# Possessive quantifiers (``*+``, ``?+``) never give back what they matched, so a ``<br``
# followed by a long whitespace run is rejected in one pass. The plain ``<\s*br\s*/?\s*>``
# tried every split of that run between its two ``\s*``: quadratic, ~1 s for 20k characters.
# Both match exactly the same spans: no ``\s`` matches ``b``, ``/`` or ``>``, so nothing a
# quantifier gives back could ever help the rest of the pattern match.
_HTML_BREAK = re.compile(r"<\s*+br\s*+/?+\s*+>", re.IGNORECASE)
_WORD_OR_SYMBOL = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


class Standardizer(Protocol):
    """Turns one text into its list of tokens."""

    def tokens(self, text: str) -> list[str]: ...

    def to_config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WordStandardizer:
    """Lowercase, drop HTML line breaks, split words and punctuation (see module docstring)."""

    def tokens(self, text: str) -> list[str]:
        """Return the tokens of one text."""
        return _WORD_OR_SYMBOL.findall(_HTML_BREAK.sub(" ", text.lower()))

    def to_config(self) -> dict[str, Any]:
        """Return the JSON-serializable config."""
        return {"kind": "words"}


@dataclass(frozen=True)
class KerasLegacyStandardizer:
    """Reproduce ``keras.preprocessing.text.text_to_word_sequence`` (and ``char_level``)."""

    filters: str = KERAS_DEFAULT_FILTERS
    lower: bool = True
    split: str = " "
    char_level: bool = False

    def __post_init__(self) -> None:
        # str.split("") raises; Keras would fail the same way, but at encode time.
        if not self.split and not self.char_level:
            raise TokenizerError("keras_legacy standardizer needs a non-empty 'split'")
        table = str.maketrans(dict.fromkeys(self.filters, self.split)) if self.filters else {}
        object.__setattr__(self, "_table", table)

    def tokens(self, text: str) -> list[str]:
        """Return the tokens of one text, as the Keras legacy Tokenizer would."""
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        table: dict[int, str] = self.__dict__["_table"]
        return [token for token in text.translate(table).split(self.split) if token]

    def to_config(self) -> dict[str, Any]:
        """Return the JSON-serializable config."""
        return {
            "kind": "keras_legacy",
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
        }


def standardizer_from_config(config: dict[str, Any]) -> Standardizer:
    """Build a standardizer from the config that ``to_config`` wrote."""
    kind = config.get("kind")
    if kind == "words":
        return WordStandardizer()
    if kind == "keras_legacy":
        return KerasLegacyStandardizer(
            filters=str(config.get("filters", KERAS_DEFAULT_FILTERS)),
            lower=bool(config.get("lower", True)),
            split=str(config.get("split", " ")),
            char_level=bool(config.get("char_level", False)),
        )
    raise TokenizerError(f"unknown standardizer kind {kind!r}")


class Tokenizer:
    """A fitted vocabulary that encodes texts to lists of ids (no padding; see preprocessing)."""

    def __init__(
        self,
        word_index: dict[str, int],
        *,
        num_words: int | None = None,
        oov_token: str | None = DEFAULT_OOV_TOKEN,
        standardizer: Standardizer | None = None,
        document_count: int = 0,
    ) -> None:
        if num_words is not None and num_words < 1:
            raise TokenizerError(f"num_words must be >= 1 or None, got {num_words}")
        if any(index < 1 for index in word_index.values()):
            raise TokenizerError("word ids must start at 1 (0 is reserved for padding)")
        self.word_index = word_index
        self.num_words = num_words
        self.oov_token = oov_token
        self.standardizer: Standardizer = standardizer or WordStandardizer()
        self.document_count = document_count
        self.oov_index = word_index.get(oov_token) if oov_token is not None else None
        # Precompute the final id of every word so encoding is one dict lookup per token.
        self._lookup = {
            word: (index if num_words is None or index < num_words else self.oov_index)
            for word, index in word_index.items()
        }

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        *,
        num_words: int | None = None,
        oov_token: str | None = DEFAULT_OOV_TOKEN,
        standardizer: Standardizer | None = None,
    ) -> Tokenizer:
        """Count tokens over ``texts`` and number them by descending frequency."""
        standardizer = standardizer or WordStandardizer()
        counts: Counter[str] = Counter()
        document_count = 0
        for text in texts:
            counts.update(standardizer.tokens(text))
            document_count += 1
        # Counter keeps first-seen order, and sorted() is stable: ties keep that order, as Keras.
        ranked = sorted(counts.items(), key=lambda item: item[1], reverse=True)
        vocabulary = ([oov_token] if oov_token is not None else []) + [w for w, _ in ranked]
        word_index = {word: index for index, word in enumerate(vocabulary, start=1)}
        return cls(
            word_index,
            num_words=num_words,
            oov_token=oov_token,
            standardizer=standardizer,
            document_count=document_count,
        )

    @property
    def vocabulary_size(self) -> int:
        """Return the number of distinct ids ``encode`` can emit, padding id 0 included."""
        largest = max(self.word_index.values(), default=0)
        if self.num_words is not None:
            largest = min(largest, self.num_words - 1)
        # Keras emits the OOV id even when num_words is smaller than it.
        return max(largest, self.oov_index or 0) + 1

    def encode(self, text: str) -> list[int]:
        """Return the ids of one text (unknown words -> OOV id, or dropped without one)."""
        ids = self.token_ids(self.standardizer.tokens(text))
        if self.oov_index is None:
            return [i for i in ids if i is not None]
        return ids  # type: ignore[return-value]  # no None left when there is an OOV id

    def token_ids(self, tokens: Sequence[str]) -> list[int | None]:
        """Return each token's id: the OOV id for unknown words, None where one is dropped."""
        lookup = self._lookup
        oov = self.oov_index
        return [lookup.get(token, oov) for token in tokens]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the ids of every text."""
        return [self.encode(text) for text in texts]

    # -- serialization -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return this tokenizer in the project's own JSON shape (only ids it can emit)."""
        limit = self.vocabulary_size
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "standardizer": self.standardizer.to_config(),
            "num_words": self.num_words,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_index": {w: i for w, i in self.word_index.items() if i < limit},
        }

    def to_json(self) -> str:
        """Serialize to JSON (see ``to_dict``)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        """Write the JSON to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        """Load our own JSON or a Keras legacy ``Tokenizer.to_json()`` string."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TokenizerError(f"tokenizer JSON is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise TokenizerError("tokenizer JSON must be an object")
        if data.get("class_name") == "Tokenizer":
            return _from_keras_legacy(data)
        if data.get("format") != FORMAT_NAME:
            raise TokenizerError(
                "unrecognized tokenizer JSON: expected our format or a Keras Tokenizer.to_json()"
            )
        if data.get("version") != FORMAT_VERSION:
            raise TokenizerError(
                f"tokenizer format version {data.get('version')!r} is not supported "
                f"(this build reads version {FORMAT_VERSION})"
            )
        try:
            return cls(
                _checked_word_index(data["word_index"]),
                num_words=data.get("num_words"),
                oov_token=data.get("oov_token"),
                standardizer=standardizer_from_config(data["standardizer"]),
                document_count=int(data.get("document_count", 0)),
            )
        except KeyError as exc:
            raise TokenizerError(f"tokenizer JSON lacks the key {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer JSON file (ours or Keras legacy)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenizerError(f"cannot read tokenizer {path}: {exc}") from exc
        return cls.from_json(text)


def _checked_word_index(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict) or not all(
        isinstance(w, str) and isinstance(i, int) for w, i in raw.items()
    ):
        raise TokenizerError("word_index must map words to integer ids")
    return raw


def _from_keras_legacy(data: dict[str, Any]) -> Tokenizer:
    config = data.get("config")
    if not isinstance(config, dict) or "word_index" not in config:
        raise TokenizerError("Keras Tokenizer JSON lacks config.word_index")
    # Keras stores the dictionaries as JSON strings inside the JSON.
    raw_index = config["word_index"]
    word_index = _checked_word_index(
        json.loads(raw_index) if isinstance(raw_index, str) else raw_index
    )
    return Tokenizer(
        word_index,
        num_words=config.get("num_words") or None,  # Keras treats 0 like None
        oov_token=config.get("oov_token"),
        standardizer=KerasLegacyStandardizer(
            filters=config.get("filters") or "",
            lower=bool(config.get("lower", True)),
            split=config.get("split", " "),
            char_level=bool(config.get("char_level", False)),
        ),
        document_count=int(config.get("document_count") or 0),
    )
