"""Session fixtures: one tiny bundle trained once and shared by training and service tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures import TINY_TRAIN_ARGS, make_reviews, write_jsonl, write_word_vectors

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Return (train, val) JSONL files of synthetic reviews."""
    directory = tmp_path_factory.mktemp("data")
    train = write_jsonl(directory / "train.jsonl", make_reviews(240, seed=1))
    val = write_jsonl(directory / "val.jsonl", make_reviews(60, seed=2))
    return train, val


@pytest.fixture(scope="session")
def tiny_bundle(tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train a tiny bundle through the real CLI, once per test session."""
    from training.cli import train_main

    out = tmp_path_factory.mktemp("bundle") / "tiny"
    train, val = tiny_data
    code = train_main(
        [
            "--train",
            str(train),
            "--val",
            str(val),
            "--out",
            str(out),
            "--name",
            "tiny",
            "--model-version",
            "7",
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_hybrid_bundle(
    tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny bundle with every optional part: pre-training, n-grams, snippets, 2 members."""
    from training.cli import train_main

    directory = tmp_path_factory.mktemp("hybrid")
    unlabelled = write_jsonl(directory / "unsup.jsonl", make_reviews(200, seed=3))
    train, val = tiny_data
    out = directory / "bundle"
    code = train_main(
        [
            *("--train", str(train), "--val", str(val), "--out", str(out)),
            *("--pretrain-unlabelled", str(unlabelled), "--pretrain-epochs", "2"),
            *("--ngram-buckets", "128", "--ngram-dim", "4", "--snippets", "0.5", "--ensemble", "2"),
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_nbsvm_bundle(
    tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny bundle with the NB-SVM n-gram branch blended into the RNN's output."""
    from training.cli import train_main

    out = tmp_path_factory.mktemp("nbsvm") / "bundle"
    train, val = tiny_data
    code = train_main(
        [
            *("--train", str(train), "--val", str(val), "--out", str(out)),
            *("--nb-buckets", "64", "--nb-weight", "0.7"),
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_word_vectors_bundle(
    tiny_data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny bundle with frozen word vectors and words added for them (and the NB-SVM branch)."""
    from training.cli import train_main

    directory = tmp_path_factory.mktemp("word_vectors")
    vectors = write_word_vectors(directory / "vectors.txt")
    train, val = tiny_data
    out = directory / "bundle"
    code = train_main(
        [
            *("--train", str(train), "--val", str(val), "--out", str(out)),
            *("--word-vectors", str(vectors), "--word-vectors-extra", "8"),
            *("--word-vectors-projection", "4", "--word-dropout", "0.5"),
            *("--nb-buckets", "64", "--ngram-buckets", "32", "--ngram-dim", "3"),
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    return out
