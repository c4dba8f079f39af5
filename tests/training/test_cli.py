"""The CLIs: evaluation reports, readable help, and clear errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.bundle import read_metadata
from training.cli import build_train_parser, evaluate_main, train_main


def test_evaluate_writes_report_matching_training(
    tiny_bundle: Path, tiny_data: tuple[Path, Path], tmp_path: Path
) -> None:
    _, val = tiny_data
    out = tmp_path / "report.json"
    code = evaluate_main(["--model-dir", str(tiny_bundle), "--data", str(val), "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    # Raw 0/1 labels were mapped to the bundle's names, as in training.
    assert set(report["per_class"]) == {"negative", "positive"}
    validation = read_metadata(tiny_bundle).metrics["validation"]
    assert report["accuracy"] == pytest.approx(validation["accuracy"])
    assert report["count"] == 60
    assert (tmp_path / "report.md").read_text().startswith("# Evaluation report")


def test_evaluate_on_csv_with_named_labels(tiny_bundle: Path, tmp_path: Path) -> None:
    data = tmp_path / "mine.csv"
    data.write_text("review,sentiment\ngreat wonderful,positive\nawful boring,negative\n")
    code = evaluate_main(
        [
            "--model-dir",
            str(tiny_bundle),
            "--data",
            str(data),
            "--text-column",
            "review",
            "--label-column",
            "sentiment",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "r.json").read_text())["count"] == 2


def test_help_lists_every_group() -> None:
    text = build_train_parser().format_help()
    for option in (
        "--train",
        "--val",
        "--cell",
        "--bidirectional",
        "--pooling",
        "--clipnorm",
        "--optimizer",
        "--maxlen",
        "--truncating",
        "--patience",
        "--baseline",
        "--pretrain-unlabelled",
        "--ngram-buckets",
        "--snippets",
        "--ensemble",
    ):
        assert option in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "fine", "label": 1}\n{"label": 0}\n', "train.jsonl:2: missing column 'text'"),
        ('{"text": "fine", "label": 1}\n{"text": "  ", "label": 0}\n', "train.jsonl:2: empty"),
    ],
)
def test_bad_training_data_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(content)
    code = train_main(["--train", str(data), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_bundle_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = evaluate_main(["--model-dir", str(tmp_path / "none"), "--data", str(tmp_path / "x")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
