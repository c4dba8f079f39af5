"""The bundle contract: a trained bundle loads, predicts as trained, and bad bundles are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    load_bundle,
    read_metadata,
)
from training.errors import BundleError
from training.tokenizer import Tokenizer


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(bundle, target)
    return target


def test_bundle_has_every_artifact(tiny_bundle: Path) -> None:
    for name in (
        MODEL_FILE,
        TOKENIZER_FILE,
        METADATA_FILE,
        "history.csv",
        "training_curves.png",
        "evaluation.json",
        "evaluation.md",
    ):
        assert (tiny_bundle / name).is_file(), name
    metadata = read_metadata(tiny_bundle)
    assert metadata.labels == ["negative", "positive"]
    assert (metadata.name, metadata.version) == ("tiny", "7")
    assert metadata.padding == "post"
    assert metadata.maxlen == 24
    assert 0.0 <= metadata.metrics["validation"]["accuracy"] <= 1.0
    assert {"train", "validation"} <= metadata.data.keys()
    assert "keras" in metadata.versions
    assert metadata.architecture["config"]["cell"] == "gru"


def test_loaded_bundle_predicts_like_training(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    texts = ["great wonderful film", "awful boring waste", "the plot"]
    batch = bundle.preprocessor.transform(texts)
    scores = np.asarray(bundle.model(batch, training=False))
    assert scores.shape == (3, 1)
    report = json.loads((tiny_bundle / "evaluation.json").read_text())
    assert report["accuracy"] == pytest.approx(
        read_metadata(tiny_bundle).metrics["validation"]["accuracy"]
    )


@pytest.mark.parametrize("missing", [MODEL_FILE, TOKENIZER_FILE, METADATA_FILE])
def test_incomplete_bundle_is_refused(tiny_bundle: Path, tmp_path: Path, missing: str) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / missing).unlink()
    with pytest.raises(BundleError, match=f"incomplete: missing {missing}"):
        load_bundle(bundle)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")


def test_truncated_model_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    data = (bundle / MODEL_FILE).read_bytes()
    (bundle / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="cannot load Keras model"):
        load_bundle(bundle, verify_checksums=False)


def _edit_metadata(bundle: Path, **changes: object) -> None:
    path = bundle / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"labels": ["only"]}, "labels"),
        ({"labels": ["a", "b", "c"]}, "3 labels need 3 output"),
        ({"padding": "middle"}, "padding"),
        ({"vocabulary_size": 5}, "vocabulary_size"),
    ],
)
def test_inconsistent_metadata_is_refused(
    tiny_bundle: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_metadata(bundle, **changes)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_tokenizer_larger_than_embedding_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    big = Tokenizer.fit([" ".join(f"w{i}" for i in range(500))])
    big.save(bundle / TOKENIZER_FILE)
    _edit_metadata(bundle, vocabulary_size=big.vocabulary_size)
    with pytest.raises(BundleError, match="embedding has only"):
        load_bundle(bundle, verify_checksums=False)
