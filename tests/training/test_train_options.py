"""The model-quality options end to end: what they put in the bundle, and what it computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.fixtures import make_reviews
from training.batches import predict_probabilities
from training.bundle import load_bundle

TEXTS = [text for text, _ in make_reviews(20, seed=9)]


def test_ensemble_bundle_serves_the_mean_of_its_members(tiny_hybrid_bundle: Path) -> None:
    bundle = load_bundle(tiny_hybrid_bundle)
    assert bundle.metadata.architecture["ensemble"] == 2
    assert len(bundle.metadata.metrics["ensemble_members_val_accuracy"]) == 2
    ids = bundle.preprocessor.transform(TEXTS)
    members = [np.asarray(bundle.model.get_layer(f"member_{i}")(ids)) for i in (1, 2)]
    assert not np.allclose(members[0], members[1])  # different seeds, different models
    combined = predict_probabilities(bundle.model, bundle.preprocessor, TEXTS)[:, 1:]
    np.testing.assert_allclose(combined, (members[0] + members[1]) / 2, atol=1e-6)


def test_options_are_recorded_in_the_bundle(tiny_hybrid_bundle: Path) -> None:
    metadata = load_bundle(tiny_hybrid_bundle).metadata
    assert metadata.architecture["config"]["ngram_buckets"] == 128
    assert metadata.training["snippets"] == 0.5
    pretraining = metadata.metrics["pretraining"]
    assert pretraining["texts"] > 200  # the unlabelled texts plus the training texts
    assert 0 < pretraining["coverage"] <= 1


def test_extra_data_is_fitted_on_but_never_cut_into_snippets() -> None:
    from training.data import Dataset
    from training.train import TrainConfig, prepare_data

    reviews = make_reviews(20, seed=3)
    train_set = Dataset([t for t, _ in reviews], [str(y) for _, y in reviews], "reviews")
    validation_set = Dataset(["fine film", "dull film"], ["1", "0"], "val")
    extra_set = Dataset(["zorblax works.", "quibbet broke."], ["1", "0"], "extra")
    data = prepare_data(
        train_set, validation_set, TrainConfig(snippets=2.0), None, extra_set=extra_set
    )
    # 20 reviews + 40 snippets of the reviews + the 2 extra texts, once each.
    assert len(data.fit_set) == 62
    assert data.fit_set.texts[-2:] == extra_set.texts
    assert sum("zorblax" in text or "quibbet" in text for text in data.fit_set.texts) == 2
    assert data.train_set.texts == [*train_set.texts, *extra_set.texts]
    assert list(data.y_fit[-2:]) == [1, 0]
    assert data.validation_set is validation_set
