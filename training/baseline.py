"""The linear baseline users would otherwise pick: TF-IDF word uni+bigrams + logistic regression."""

from __future__ import annotations

import time
from typing import Any

from training.data import Dataset
from training.tokenizer import WordStandardizer


def tfidf_baseline(train: Dataset, validation: Dataset, *, c: float = 4.0) -> dict[str, Any]:
    """Fit on ``train``, return accuracy on ``validation`` and the wall time."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    # Same tokens as the RNN sees, so the comparison is about the model, not the tokenizer.
    vectorizer = TfidfVectorizer(
        tokenizer=WordStandardizer().tokens,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=2,
        max_df=0.95,
        sublinear_tf=True,
    )
    features = vectorizer.fit_transform(train.texts)
    classifier = LogisticRegression(C=c, max_iter=2000)
    classifier.fit(features, train.labels)
    accuracy = float(classifier.score(vectorizer.transform(validation.texts), validation.labels))
    return {
        "model": "tfidf_word_1_2gram_logreg",
        "accuracy": accuracy,
        "C": c,
        "features": int(features.shape[1]),
        "seconds": round(time.perf_counter() - started, 1),
    }
