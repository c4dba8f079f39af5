"""The NB-SVM branch: features as NBSVM defines them, the layer equal to its numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import make_reviews, write_jsonl
from training.batches import predict_probabilities
from training.bundle import load_bundle
from training.cli import train_main
from training.errors import ConfigError
from training.layers import NgramLogit
from training.nbsvm import (
    NbsvmConfig,
    NgramCoefficients,
    feature_matrix,
    fit_ngram_coefficients,
    ngram_logits,
)
from training.preprocessing import pad_sequences

VOCABULARY = 40
BUCKETS = 53


def test_features_are_binary_words_and_real_bigrams() -> None:
    features = feature_matrix([[3, 3, 4, 0, 0], [5]], VOCABULARY, BUCKETS).toarray()  # type: ignore[attr-defined]
    assert features.shape == (2, VOCABULARY + BUCKETS)
    assert set(np.unique(features)) <= {0.0, 1.0}  # binarized: "3" twice counts once
    assert features[0, 3] == features[0, 4] == 1
    assert features[0, 0] == 0  # no padding
    assert features[0, VOCABULARY:].sum() == 2  # (3,3) and (3,4); none touching padding
    assert features[1].sum() == 1  # one word, no bigram


def test_coefficients_learn_the_sentiment_words() -> None:
    rng = np.random.default_rng(0)
    good, bad = 7, 9
    encoded = [
        [*rng.integers(10, VOCABULARY, size=6).tolist(), good if i % 2 else bad] for i in range(200)
    ]
    labels = np.array([i % 2 for i in range(200)])
    coefficients = fit_ngram_coefficients(
        encoded, labels, VOCABULARY, NbsvmConfig(buckets=BUCKETS, c=1.0)
    )
    assert coefficients.weights[good] > 0 > coefficients.weights[bad]
    assert np.mean((ngram_logits(encoded, coefficients, VOCABULARY) > 0) == labels) == 1.0


def test_multiclass_labels_are_refused() -> None:
    with pytest.raises(ConfigError, match="binary"):
        fit_ngram_coefficients([[1], [2], [3]], np.array([0, 1, 2]), 4, NbsvmConfig(buckets=8))


@pytest.mark.parametrize("xla", [False, True])
def test_layer_equals_the_numpy_reference_whatever_the_padding(xla: bool) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(1)
    coefficients = NgramCoefficients(
        rng.normal(size=VOCABULARY + BUCKETS).astype(np.float32), -0.25
    )
    texts = [rng.integers(1, VOCABULARY, size=rng.integers(1, 14)).tolist() for _ in range(30)]
    texts += [[3, 3, 3, 3], [5], [1, 1, 2]]
    layer = NgramLogit(VOCABULARY, BUCKETS)
    layer.build((None, None))
    layer.coefficients.assign(coefficients.weights)
    layer.bias.assign(coefficients.bias)
    call = tf.function(layer, jit_compile=xla)
    expected = ngram_logits(texts, coefficients, VOCABULARY)
    for length in (14, 20, 48):
        got = np.asarray(call(pad_sequences(texts, length)))[:, 0]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bundle_blends_the_branch_into_the_rnn(tiny_nbsvm_bundle: Path) -> None:
    bundle = load_bundle(tiny_nbsvm_bundle)
    assert bundle.metadata.architecture["nbsvm"]["buckets"] == 64
    metrics = bundle.metadata.metrics
    assert {"rnn_val_accuracy", "nbsvm_val_accuracy"} <= metrics.keys()
    evaluation = (tiny_nbsvm_bundle / "evaluation.md").read_text()
    assert "- data: `" in evaluation  # which split the figures are from
    assert "NB-SVM branch" in evaluation
    texts = [text for text, _ in make_reviews(12, seed=4)]
    ids = bundle.preprocessor.transform(texts)
    rnn = np.asarray(bundle.model.get_layer("rnn")(ids))[:, 0]
    evidence = np.asarray(bundle.model.get_layer("ngram_logit")(ids))[:, 0]
    expected = 1 / (1 + np.exp(-(np.log(rnn) - np.log1p(-rnn) + 0.7 * evidence)))
    served = predict_probabilities(bundle.model, bundle.preprocessor, texts)[:, 1]
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_nb_branch_needs_binary_labels(tmp_path: Path) -> None:
    rows = [(text, label % 3) for text, label in make_reviews(30, seed=2)]
    rows = [(text, index % 3) for index, (text, _) in enumerate(rows)]
    data = write_jsonl(tmp_path / "three.jsonl", rows)
    code = train_main(
        [
            *("--train", str(data), "--val", str(data), "--out", str(tmp_path / "out")),
            *("--nb-buckets", "16", "--epochs", "1", "--units", "2", "--embedding-dim", "4"),
            *("--num-words", "32", "--maxlen", "12", "--quiet"),
        ]
    )
    assert code != 0
