"""The CLIs: evaluation reports, readable help, and clear errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures import TINY_TRAIN_ARGS, make_reviews
from training.bundle import read_metadata
from training.cli import DATA_ENV, build_train_parser, evaluate_main, train_main
from training.data import concatenate, fingerprint, read_labelled, split_dataset


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
        "--group-column",
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


def write_movie_reviews(path: Path, movies: int = 20, per_movie: int = 6) -> Path:
    """Write tiny JSONL reviews with a movie key: per_movie reviews (half positive) per movie."""
    rows = make_reviews(movies * per_movie, seed=4)
    with path.open("w", encoding="utf-8") as handle:
        for index, (text, label) in enumerate(rows):
            record = {"id": f"x/{index}", "movie": f"tt{index // per_movie:07d}", "text": text}
            handle.write(json.dumps({**record, "label": label}) + "\n")
    return path


def test_group_column_splits_validation_by_movie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)  # no default --val: the split is under test
    data = write_movie_reviews(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    code = train_main(
        [
            *("--train", str(data), "--out", str(out), "--val-split", "0.25"),
            *("--group-column", "movie", "--seed", "5"),
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    # The bundle was trained and selected on exactly the grouped split of the file.
    names = {"0": "negative", "1": "positive"}
    grouped = read_labelled(data, label_names=names, group_column="movie")
    rest, held = split_dataset(grouped, 0.25, seed=5)
    assert rest.groups is not None
    assert held.groups is not None
    assert not set(rest.groups) & set(held.groups)
    recorded = read_metadata(out).data
    assert recorded["validation"]["count"] == len(held) == 30
    assert recorded["validation"]["sha256"] == fingerprint(held)
    assert recorded["train"]["sha256"] == fingerprint(rest)
    assert recorded["validation"]["labels"] == {"negative": 15, "positive": 15}
    # The report names the split it was selected on.
    assert (
        "held out: 30 rows, 5 whole groups, none on both sides"
        in (out / "evaluation.md").read_text()
    )
    # Without --group-column the same seed holds out a stratified sample of rows instead.
    plain = read_labelled(data, label_names=names)
    assert fingerprint(split_dataset(plain, 0.25, seed=5)[1]) != fingerprint(held)


def test_extra_train_is_fitted_on_and_never_validated_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    data = write_movie_reviews(tmp_path / "train.jsonl")
    extra = tmp_path / "extra.csv"  # already labelled with the display names
    extra.write_text(
        "text,label,domain\n"
        + "".join(f"the zorblax gadget works {i},positive,product\n" for i in range(20))
        + "".join(f"the quibbet gadget broke {i},negative,product\n" for i in range(20)),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = train_main(
        [
            *("--train", str(data), "--out", str(out), "--val-split", "0.25", "--seed", "5"),
            *("--extra-train", str(extra), "--snippets", "1.0"),
            *TINY_TRAIN_ARGS,
        ]
    )
    assert code == 0
    names = {"0": "negative", "1": "positive"}
    rest, held = split_dataset(read_labelled(data, label_names=names), 0.25, seed=5)
    recorded = read_metadata(out).data
    # Fitted on the split's training part plus every extra row; validated on the split only.
    assert recorded["train"]["sha256"] == fingerprint(concatenate(rest, read_labelled(extra)))
    assert recorded["train"]["count"] == len(rest) + 40
    assert recorded["validation"]["sha256"] == fingerprint(held)
    # The tokenizer was fitted on the extra texts too.
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert tokenizer["document_count"] == len(rest) + 40


def test_group_column_missing_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine", "label": 1, "movie": "tt1"}\n{"text": "ok", "label": 0}\n')
    code = train_main(
        ["--train", str(data), "--out", str(tmp_path / "out"), "--group-column", "movie"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "train.jsonl:2: missing column 'movie'" in err
    assert "Traceback" not in err


def test_option_defaults_are_the_config_defaults() -> None:
    """One set of defaults: every option named after a config field defaults to that field."""
    from dataclasses import MISSING, fields

    from training.cli import build_train_parser
    from training.model import ModelConfig
    from training.nbsvm import NbsvmConfig
    from training.pretrain import PretrainConfig
    from training.train import TrainConfig

    defaults = {action.dest: action.default for action in build_train_parser()._actions}
    checked = 0
    for config, prefix in (
        (TrainConfig, ""),
        (ModelConfig, ""),
        (PretrainConfig, "pretrain_"),
        (NbsvmConfig, "nb_"),
    ):
        for field in fields(config):
            if prefix + field.name in defaults and field.default is not MISSING:
                assert defaults[prefix + field.name] == field.default, prefix + field.name
                checked += 1
    assert checked >= 30
