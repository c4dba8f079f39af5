"""Pre-train word embeddings on unlabelled texts (word2vec), to initialize the Embedding layer.

The sentences are the tokenizer's own id sequences, so the vectors cover exactly the
vocabulary the model sees (OOV id included) and tokenization cannot drift between the two.
gensim's word2vec is multi-threaded C: on 2 cores it learns 64-d vectors from IMDB's 70,000
train + unlabelled reviews in about a minute, where a recurrent language model would take
hours on the same CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.errors import ConfigError
from training.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """word2vec settings; every field is a `sentiment-train` option."""

    epochs: int = 5
    window: int = 5
    skip_gram: bool = True  # better vectors for rare words than CBOW, ~3x slower
    negative: int = 10
    min_count: int = 2
    workers: int = 2

    def __post_init__(self) -> None:
        if min(self.epochs, self.window, self.negative, self.min_count, self.workers) < 1:
            raise ConfigError("pre-training epochs, window, negative, min_count, workers: >= 1")


def pretrain_embeddings(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    dim: int,
    *,
    config: PretrainConfig | None = None,
    seed: int = 1337,
) -> tuple[np.ndarray, dict[str, float]]:
    """Return an embedding matrix (vocabulary_size, dim) learned from ``texts``, and stats.

    Row 0 (padding) is zero.
    """
    try:
        from gensim.models import Word2Vec
        from gensim.models.callbacks import CallbackAny2Vec
    except ImportError as exc:  # the `train` extra installs it
        hint = "pip install 'sentiment-service[train]'"
        raise ConfigError(f"pre-training needs gensim: {hint}") from exc

    settings = config or PretrainConfig()
    started = time.perf_counter()
    sentences = [[str(i) for i in ids] for ids in tokenizer.encode_batch(texts) if len(ids) > 1]
    if not sentences:
        raise ConfigError("no unlabelled text with at least two tokens to pre-train on")
    log.info(
        "pre-training %d-d word2vec on %d texts (%d tokens), %d epochs",
        dim,
        len(sentences),
        sum(len(s) for s in sentences),
        settings.epochs,
    )

    class EpochLog(CallbackAny2Vec):
        """One progress line per epoch instead of gensim's line per second."""

        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model: Any) -> None:
            self.epoch += 1
            elapsed = time.perf_counter() - started
            log.info("word2vec epoch %d/%d done, %.0f s", self.epoch, settings.epochs, elapsed)

    logging.getLogger("gensim").setLevel(logging.WARNING)
    word2vec = Word2Vec(
        sentences,
        vector_size=dim,
        window=settings.window,
        sg=1 if settings.skip_gram else 0,
        negative=settings.negative,
        min_count=settings.min_count,
        workers=settings.workers,
        epochs=settings.epochs,
        seed=seed,
        callbacks=[EpochLog()],
    )
    size = tokenizer.vocabulary_size
    vectors = word2vec.wv.vectors
    # Ids word2vec skipped (rarer than min_count) get random vectors of the same spread.
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(vectors.std()), (size, dim)).astype("float32")
    matrix[0] = 0.0
    covered = 0
    for token, index in word2vec.wv.key_to_index.items():
        token_id = int(token)
        if 0 < token_id < size:
            matrix[token_id] = vectors[index]
            covered += 1
    stats = {
        "texts": len(sentences),
        "coverage": round(covered / max(size - 1, 1), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log.info(
        "pre-trained vectors for %.1f%% of the vocabulary in %.0f s",
        100 * stats["coverage"],
        stats["seconds"],
    )
    return matrix, stats
