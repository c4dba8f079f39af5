"""The promotion gate: `current` moves to a candidate only if it scores at least as well."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures import TINY_TRAIN_ARGS, make_reviews, write_jsonl
from training.promote import ERROR, PROMOTED, REFUSED, Gate, main


@pytest.fixture(scope="module")
def worse_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny bundle trained on flipped labels: it gets most held-out texts wrong."""
    from training.cli import train_main

    directory = tmp_path_factory.mktemp("worse")
    flipped = [(text, 1 - label) for text, label in make_reviews(240, seed=1)]
    train = write_jsonl(directory / "train.jsonl", flipped)
    val = write_jsonl(directory / "val.jsonl", make_reviews(60, seed=2))
    out = directory / "bundle"
    args = ["--train", str(train), "--val", str(val), "--out", str(out), *TINY_TRAIN_ARGS]
    assert train_main([*args, "--name", "worse"]) == 0
    return out


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled texts neither bundle trained or validated on; every 10th label is wrong, so
    even the good bundle scores about 0.9."""
    rows = [
        (text, 1 - label if i % 10 == 0 else label)
        for i, (text, label) in enumerate(make_reviews(80, seed=5))
    ]
    return write_jsonl(tmp_path_factory.mktemp("holdout") / "holdout.jsonl", rows)


@pytest.fixture
def models(tmp_path: Path, tiny_bundle: Path, worse_bundle: Path) -> Path:
    """A models volume: runs/good, runs/good-again (the same model), runs/worse; no current."""
    shutil.copytree(tiny_bundle, tmp_path / "runs" / "good")
    shutil.copytree(tiny_bundle, tmp_path / "runs" / "good-again")
    shutil.copytree(worse_bundle, tmp_path / "runs" / "worse")
    return tmp_path


def _promote(models: Path, candidate: str, holdout: Path, *extra: str) -> int:
    return main(
        [
            *("--candidate", str(models / "runs" / candidate)),
            *("--current", str(models / "current"), "--data", str(holdout), *extra),
        ]
    )


def _report(models: Path, candidate: str) -> dict[str, object]:
    report: dict[str, object] = json.loads(
        (models / "runs" / candidate / "promotion.json").read_text()
    )
    return report


def test_first_candidate_is_promoted_when_it_meets_the_floor(models: Path, holdout: Path) -> None:
    assert _promote(models, "good", holdout, "--min-accuracy", "0.6") == PROMOTED
    assert os.readlink(models / "current") == "runs/good"  # relative: any mount path works
    report = _report(models, "good")
    assert report["decision"] == "promoted"
    assert report["current"] is None
    assert sorted(p.name for p in models.iterdir()) == ["current", "runs"]  # no temporary left


def test_worse_candidate_is_refused_and_current_stays(
    models: Path, holdout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (models / "current").symlink_to("runs/good")
    assert _promote(models, "worse", holdout) == REFUSED
    assert os.readlink(models / "current") == "runs/good"
    report = _report(models, "worse")
    assert report["decision"] == "refused"
    candidate, current = report["candidate"], report["current"]
    assert isinstance(candidate, dict)
    assert isinstance(current, dict)
    assert candidate["accuracy"] < current["accuracy"]
    assert candidate["count"] == current["count"] == 80
    assert any("REFUSED" in r.message and "unchanged" in r.message for r in caplog.records)


def test_better_candidate_replaces_current(models: Path, holdout: Path) -> None:
    (models / "current").symlink_to("runs/worse")
    assert _promote(models, "good", holdout) == PROMOTED
    assert os.readlink(models / "current") == "runs/good"
    assert _report(models, "good")["previous_target"] == "runs/worse"


def test_equally_good_candidate_replaces_current(models: Path, holdout: Path) -> None:
    (models / "current").symlink_to("runs/good")
    assert _promote(models, "good-again", holdout) == PROMOTED
    assert os.readlink(models / "current") == "runs/good-again"


def test_candidate_below_the_floor_is_refused_without_a_current(
    models: Path, holdout: Path
) -> None:
    assert _promote(models, "worse", holdout, "--min-accuracy", "0.6") == REFUSED
    assert not os.path.lexists(models / "current")
    assert _report(models, "worse")["decision"] == "refused"


def test_better_candidate_below_the_floor_is_refused(models: Path, holdout: Path) -> None:
    (models / "current").symlink_to("runs/worse")
    assert _promote(models, "good", holdout, "--min-accuracy", "0.95") == REFUSED
    assert os.readlink(models / "current") == "runs/worse"


def test_unloadable_candidate_is_an_error_and_current_stays(
    models: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (models / "current").symlink_to("runs/good")
    (models / "runs" / "worse" / "model.keras").write_bytes(b"truncated")
    assert _promote(models, "worse", holdout) == ERROR
    assert os.readlink(models / "current") == "runs/good"
    assert "does not match its checksum" in capsys.readouterr().err


def test_unloadable_current_is_an_error(
    models: Path, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (models / "current").symlink_to("runs/missing")
    assert _promote(models, "good", holdout) == ERROR
    assert os.readlink(models / "current") == "runs/missing"
    assert "remove the link" in capsys.readouterr().err


def test_current_that_is_not_a_symlink_is_an_error(models: Path, holdout: Path) -> None:
    shutil.copytree(models / "runs" / "worse", models / "current")
    assert _promote(models, "good", holdout) == ERROR
    assert (models / "current").is_dir()
    assert not (models / "current").is_symlink()


@pytest.mark.parametrize(
    ("gate", "candidate", "current", "promoted"),
    [
        (Gate(), 0.80, None, True),
        (Gate(min_accuracy=0.9), 0.89, None, False),
        (Gate(), 0.80, 0.81, False),
        (Gate(), 0.81, 0.81, True),
        (Gate(tolerance=0.01), 0.80, 0.81, True),
        (Gate(tolerance=0.01), 0.79, 0.81, False),
        (Gate(min_accuracy=0.9, tolerance=0.5), 0.85, 0.95, False),
        (Gate(), 0.1 + 0.2, 0.3, True),  # float noise is not a regression
    ],
)
def test_gate_rule(gate: Gate, candidate: float, current: float | None, promoted: bool) -> None:
    assert gate.decide(candidate, current)[0] is promoted


@pytest.mark.parametrize("flag", ["--min-accuracy", "--tolerance"])
def test_fractions_outside_zero_one_are_usage_errors(flag: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--candidate", "c", "--current", "l", "--data", "d", flag, "1.5"])
    assert exit_info.value.code == 2
