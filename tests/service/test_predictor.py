"""The real predictor on a real (tiny) bundle: no train/serve skew, bucketing is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.app import create_app
from service.config import Settings
from service.predictor import Predictor
from tests.fixtures import make_reviews
from training.batches import predict_probabilities
from training.bundle import load_bundle

TEXTS = [text for text, _ in make_reviews(40, seed=5)] + ["", "<br />", "unseen words only"]


@pytest.fixture(scope="module", params=[False, True], ids=["tf", "xla"])
def predictor(tiny_bundle: Path, request: pytest.FixtureRequest) -> Predictor:
    loaded = Predictor(tiny_bundle, warmup_batch_sizes=(1, 4), xla=request.param, max_batch_size=8)
    loaded.load()
    return loaded


@pytest.mark.parametrize("xla", [False, True])
def test_service_scores_equal_training_scores(tiny_bundle: Path, xla: bool) -> None:
    # Training side: the bundle's own model and preprocessing, via the evaluation path.
    bundle = load_bundle(tiny_bundle)
    expected = predict_probabilities(bundle.model, bundle.preprocessor, TEXTS)
    # Serving side: the HTTP API of an app over the same bundle directory.
    app = create_app(Settings(model_dir=tiny_bundle, xla=xla), load_in_background=False)
    response = app.test_client().post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    served = np.array(
        [
            [p["probabilities"][label] for label in bundle.metadata.labels]
            for p in response.get_json()["predictions"]
        ]
    )
    np.testing.assert_allclose(served, expected, atol=1e-6)
    app.extensions["sentiment"].stop()


def test_service_encoding_is_the_training_encoding(tiny_bundle: Path, predictor: Predictor) -> None:
    bundle = load_bundle(tiny_bundle)
    assert predictor.encode(TEXTS) == bundle.preprocessor.encode(TEXTS)
    np.testing.assert_array_equal(
        bundle.preprocessor.pad(predictor.encode(TEXTS)), bundle.preprocessor.transform(TEXTS)
    )


def test_text_scores_the_same_alone_and_beside_longer_texts(predictor: Predictor) -> None:
    short = "great film"
    longer = " ".join(["the plot was dull and the actors were awful"] * 3)
    alone = predictor.predict_encoded(predictor.encode([short]))
    batch = predictor.predict_encoded(predictor.encode([short, longer, longer + " again"]))
    assert (
        predictor.pad(predictor.encode([short])).shape[1]
        < predictor.pad(predictor.encode([short, longer])).shape[1]
    )
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-6)


def test_bucket_padding_equals_maxlen_padding(predictor: Predictor) -> None:
    encoded = predictor.encode(TEXTS)
    preprocessor = predictor.bundle.preprocessor
    full = np.asarray(predictor.bundle.model(preprocessor.pad(encoded), training=False))
    np.testing.assert_allclose(predictor.predict_encoded(encoded), full, atol=1e-6)
    assert predictor.bucketing
    if predictor.xla:  # 43 texts: several calls of at most 8 rows, grouped by length bucket
        assert max(predictor.batch_buckets) == 8


def test_empty_text_gets_finite_probabilities(predictor: Predictor) -> None:
    outputs = predictor.predict_encoded(predictor.encode(["", "   "]))
    probabilities = predictor.probabilities(outputs)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
