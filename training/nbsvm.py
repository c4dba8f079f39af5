"""NB-weighted n-gram evidence (NBSVM, Wang & Manning 2012) on the model's own token ids.

A linear model over binarized word and word-bigram features, each scaled by its naive Bayes
log-count ratio, is the strongest cheap baseline on IMDB (NBSVM-bi: 91.2% on test). Fitted
here with scikit-learn on the same token ids the RNN reads (bigrams hashed exactly as the
model's ``NgramLogit`` layer hashes them), it becomes a fixed branch of the served model
(``training.layers.NgramLogit``) whose logit is added to the RNN's: one bundle, one
preprocessing path, no new runtime dependency.

Binary labels only: the log-count ratio compares one class with the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.errors import ConfigError

# Odd multiplier of the bigram hash; training.layers uses the same constant.
BIGRAM_HASH_MULTIPLIER = 1_000_003


@dataclass(frozen=True)
class NbsvmConfig:
    """How the n-gram evidence is fitted and blended; every field is a sentiment-train option."""

    buckets: int = 0  # hashed bigram buckets; 0 = no NB-SVM branch
    c: float = 0.1  # inverse L2 strength of the logistic regression (liblinear)
    alpha: float = 1.0  # naive Bayes smoothing of the feature counts
    weight: float = 0.5  # the branch's logit is added to the RNN's, times this

    def __post_init__(self) -> None:
        if self.buckets < 0 or self.c <= 0 or self.alpha <= 0 or self.weight < 0:
            raise ConfigError("nb-buckets must be >= 0; nb-c and nb-alpha > 0; nb-weight >= 0")


@dataclass(frozen=True)
class NgramCoefficients:
    """One weight per feature (word ids, then bigram buckets) and a bias: the branch's logit."""

    weights: np.ndarray  # float32, (vocabulary_size + buckets,)
    bias: float


def bigram_ids(ids: np.ndarray, vocabulary_size: int, buckets: int) -> np.ndarray:
    """Return the feature ids of the bigrams of one text's ids (both tokens real, not padding)."""
    left, right = ids[:-1].astype(np.int64), ids[1:].astype(np.int64)
    keep = (left > 0) & (right > 0)
    pairs = (left[keep] * BIGRAM_HASH_MULTIPLIER + right[keep]) % buckets
    return pairs + vocabulary_size


def feature_matrix(encoded: Sequence[Sequence[int]], vocabulary_size: int, buckets: int) -> object:
    """Return the binarized (texts x features) CSR matrix: which words and bigrams occur."""
    from scipy import sparse

    rows: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    for row, text_ids in enumerate(encoded):
        ids = np.asarray(text_ids, dtype=np.int64)
        present = np.unique(
            np.concatenate([ids[ids > 0], bigram_ids(ids, vocabulary_size, buckets)])
        )
        rows.append(np.full(len(present), row, dtype=np.int64))
        columns.append(present)
    flat_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    flat_columns = np.concatenate(columns) if columns else np.zeros(0, np.int64)
    return sparse.csr_matrix(
        (np.ones(len(flat_rows), dtype=np.float32), (flat_rows, flat_columns)),
        shape=(len(encoded), vocabulary_size + buckets),
    )


def fit_ngram_coefficients(
    encoded: Sequence[Sequence[int]],
    labels: np.ndarray,
    vocabulary_size: int,
    config: NbsvmConfig,
    *,
    seed: int = 0,
) -> NgramCoefficients:
    """Fit NBSVM on binary ``labels`` (0/1); fold the NB ratios into one weight per feature."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    if set(np.unique(labels)) - {0, 1}:
        raise ConfigError("the NB-SVM branch needs binary labels (0/1)")
    features = feature_matrix(encoded, vocabulary_size, config.buckets)
    positive = config.alpha + np.asarray(features[labels == 1].sum(axis=0)).ravel()  # type: ignore[index]
    negative = config.alpha + np.asarray(features[labels == 0].sum(axis=0)).ravel()  # type: ignore[index]
    ratios = np.log((positive / positive.sum()) / (negative / negative.sum()))
    classifier = LogisticRegression(
        C=config.c, solver="liblinear", max_iter=2000, random_state=seed
    )
    classifier.fit(features @ sparse.diags(ratios), labels)
    weights = (classifier.coef_.ravel() * ratios).astype(np.float32)
    return NgramCoefficients(weights, float(classifier.intercept_[0]))


def ngram_logits(
    encoded: Sequence[Sequence[int]], coefficients: NgramCoefficients, vocabulary_size: int
) -> np.ndarray:
    """Return the branch's logit for each text, in numpy (the layer's reference)."""
    buckets = len(coefficients.weights) - vocabulary_size
    features = feature_matrix(encoded, vocabulary_size, buckets)
    return np.asarray(features @ coefficients.weights).ravel() + coefficients.bias
