"""The bundle contract: a trained bundle loads, predicts as trained, and bad bundles are refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.bundle import (
    CHECKSUMMED_FILES,
    METADATA_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    check_bundle_files,
    file_sha256,
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
    with pytest.raises(BundleError, match="'embedding' has only"):
        load_bundle(bundle, verify_checksums=False)


def test_tokenizer_larger_than_the_word_vectors_is_refused(
    tiny_word_vectors_bundle: Path, tmp_path: Path
) -> None:
    """The learned embedding may be smaller (its ids are clipped), the frozen table never."""
    bundle = _copy(tiny_word_vectors_bundle, tmp_path)
    load_bundle(bundle)  # embedding rows < vocabulary: fine behind LearnedVocabulary
    tokenizer = Tokenizer.load(bundle / TOKENIZER_FILE)
    size = tokenizer.vocabulary_size
    grown = {**tokenizer.word_index, **{f"extra{i}": size + i for i in range(3)}}
    Tokenizer(grown, oov_token=tokenizer.oov_token).save(bundle / TOKENIZER_FILE)
    _edit_metadata(bundle, vocabulary_size=size + 3)
    with pytest.raises(BundleError, match="'word_vectors' has only"):
        load_bundle(bundle, verify_checksums=False)


def _set_checksums(bundle: Path, checksums: dict[str, str]) -> None:
    _edit_metadata(bundle, checksums=checksums)


def _checksums(bundle: Path) -> dict[str, str]:
    checksums: dict[str, str] = json.loads((bundle / METADATA_FILE).read_text())["checksums"]
    return checksums


@pytest.mark.parametrize("verify", [True, False])
def test_bundle_without_checksums_is_refused(
    tiny_bundle: Path, tmp_path: Path, verify: bool
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _set_checksums(bundle, {})
    with pytest.raises(BundleError, match="lists no checksums"):
        check_bundle_files(bundle, verify_checksums=verify)


@pytest.mark.parametrize("uncovered", CHECKSUMMED_FILES)
def test_checksums_must_cover_every_loaded_file(
    tiny_bundle: Path, tmp_path: Path, uncovered: str
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    checksums = _checksums(bundle)
    del checksums[uncovered]
    _set_checksums(bundle, checksums)
    with pytest.raises(BundleError, match=f"no checksum for {uncovered}"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    "name",
    ["../x", "/dev/zero", "sub/../../etc/passwd", "/etc/passwd", "..", ".", "", "a\\b"],
)
def test_checksum_entry_outside_the_bundle_is_refused(
    tiny_bundle: Path, tmp_path: Path, name: str
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (tmp_path / "x").write_bytes(b"outside")
    # A valid digest of something, so only the name can be what is refused.
    _set_checksums(bundle, {**_checksums(bundle), name: file_sha256(tmp_path / "x")})
    with pytest.raises(BundleError, match="not a plain file name inside the bundle"):
        check_bundle_files(bundle, verify_checksums=False)


def test_symlink_out_of_the_bundle_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    outside = tmp_path / "elsewhere.keras"
    (bundle / MODEL_FILE).rename(outside)
    (bundle / MODEL_FILE).symlink_to(outside)
    # Even with the right digest: the loader must read only what the bundle holds.
    assert file_sha256(bundle / MODEL_FILE) == _checksums(bundle)[MODEL_FILE]
    with pytest.raises(BundleError, match="outside the bundle directory"):
        load_bundle(bundle)


def test_symlink_inside_the_bundle_is_accepted(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / MODEL_FILE).rename(bundle / "model-v7.keras")
    (bundle / MODEL_FILE).symlink_to("model-v7.keras")
    check_bundle_files(bundle)


def test_bundle_reached_through_a_symlink_loads(tiny_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "current").symlink_to(tiny_bundle)  # how the training Job promotes a bundle
    check_bundle_files(tmp_path / "current")


def test_checksum_of_a_device_or_fifo_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    os.mkfifo(bundle / "pipe")  # hashing it would block forever
    _set_checksums(bundle, {**_checksums(bundle), "pipe": "0" * 64})
    with pytest.raises(BundleError, match="pipe is not a regular file"):
        check_bundle_files(bundle)


def test_malformed_checksum_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _set_checksums(bundle, {**_checksums(bundle), TOKENIZER_FILE: "not-a-digest"})
    with pytest.raises(BundleError, match="not a sha256 hex digest"):
        check_bundle_files(bundle, verify_checksums=False)


def test_saved_bundle_checksums_cover_every_loaded_file(tiny_bundle: Path) -> None:
    checksums = read_metadata(tiny_bundle).checksums
    assert set(checksums) == set(CHECKSUMMED_FILES) == {MODEL_FILE, TOKENIZER_FILE}
    for name, digest in checksums.items():
        assert file_sha256(tiny_bundle / name) == digest


def test_shipped_default_bundle_passes_the_checks() -> None:
    check_bundle_files(Path(__file__).resolve().parents[2] / "models" / "default")


def test_keras_model_is_loaded_in_safe_mode(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    calls: list[dict[str, object]] = []
    real = keras.saving.load_model

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    load_bundle(tiny_bundle)
    assert calls
    assert calls[0]["safe_mode"] is True
