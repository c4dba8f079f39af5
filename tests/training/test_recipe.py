"""Recipes: `sentiment-train --config` reads option values from TOML, checked like the flags;
`make train` and the training Job train the one default recipe and the Job promotes through
the gate."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.bundle import read_metadata
from training.cli import build_train_parser, train_main
from training.corpora import corpus_path
from training.promote import REFUSED
from training.recipe import RECIPES_DIR, apply_recipe, recipe_path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE = RECIPES_DIR / "default.toml"
# What may be given beside the recipe: where the data and the bundle are, and log verbosity.
PER_RUN_FLAGS = {"--config", "--train", "--val", "--pretrain-unlabelled", "--out", "--quiet"}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = build_train_parser()
    apply_recipe(parser, argv)
    return parser.parse_args(argv)


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_recipe_values_become_defaults_and_flags_override_them(tmp_path: Path) -> None:
    recipe = _write(
        tmp_path,
        'units = 32\ncell = "lstm"\nbaseline = true\nbidirectional = false\n'
        'label-names = "0=neg,1=pos"\nnum_words = 500\ndropout = 0\n',
    )
    args = _parse(["--config", recipe, "--units", "16"])
    assert args.units == 16  # the command line wins
    assert (args.cell, args.baseline, args.bidirectional) == ("lstm", True, False)
    assert args.label_names == {"0": "neg", "1": "pos"}
    assert (args.num_words, args.dropout) == (500, 0.0)
    assert args.maxlen == 400  # not in the recipe: the parser's default
    assert _parse(["--config", recipe, "--bidirectional"]).bidirectional is True
    assert _parse([f"--config={recipe}"]).units == 32


def test_default_is_the_shipped_recipe() -> None:
    assert recipe_path("default") == DEFAULT_RECIPE
    assert DEFAULT_RECIPE.is_file()
    assert recipe_path(str(DEFAULT_RECIPE)) == DEFAULT_RECIPE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unitz = 3", "unknown option 'unitz' (did you mean 'units'?)"),
        ('train = "x.csv"', "'train' is a data path or per-run setting; pass --train"),
        ('out = "x"', "pass --out on the command line"),
        ('pretrain-unlabelled = "u.jsonl"', "pass --pretrain-unlabelled"),
        ('model-version = "3"', "pass --model-version"),
        ('config = "other"', "pass --config"),
        ('units = "many"', "units: invalid value 'many'"),
        ("units = 6.5", "units: invalid value 6.5"),
        ("units = true", "units must be a string or a number"),
        ("units = [1]", "units must be a string or a number"),
        ('baseline = "yes"', "baseline must be true or false"),
        ('cell = "transformer"', "cell: 'transformer' is not one of"),
        ("num-words = 1\nnum_words = 2", "'num_words' is given twice"),
        ("units = ", "is not valid TOML"),
    ],
)
def test_bad_recipe_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    recipe = _write(tmp_path, text)
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--config", recipe, "--train", "x.csv"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("nope", "no recipe named 'nope'; shipped recipes: default"),
        ("/no/such.toml", "cannot read"),
    ],
)
def test_missing_recipe_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], recipe: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--config", recipe])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_default_recipe_reproduces_the_shipped_model() -> None:
    args = _parse(["--config", "default", "--train", "t.jsonl"])
    metadata = read_metadata(ROOT / "models" / "default")
    training = {k: v for k, v in metadata.training.items() if hasattr(args, k) and k != "verbose"}
    assert len(training) > 10
    assert {k: getattr(args, k) for k in training} == training
    architecture = dict(metadata.architecture["config"])
    # The served config: training folded the vectors' Dense into their table (its width).
    assert architecture.pop("word_vectors_projection") == 0
    assert architecture["word_vectors_dim"] == args.word_vectors_projection
    options = {k: v for k, v in architecture.items() if hasattr(args, k)}
    assert {"units", "embedding_dim", "ngram_buckets", "word_dropout"} <= options.keys()
    assert {k: getattr(args, k) for k in options} == options
    nbsvm = metadata.architecture["nbsvm"]
    assert nbsvm["buckets"] > 0
    assert (args.nb_buckets, args.nb_c, args.nb_alpha, args.nb_weight) == (
        nbsvm["buckets"],
        nbsvm["c"],
        nbsvm["alpha"],
        nbsvm["weight"],
    )
    assert args.name == metadata.name
    assert args.label_names == metadata.data["label_names"]
    assert args.baseline is ("baseline" in metadata.metrics)
    assert "pretraining" in metadata.metrics  # so both commands below pass --pretrain-unlabelled
    # Fitted on the reviews plus the corpus the recipe names, which ships in the package.
    corpus = corpus_path(args.extra_train)
    assert corpus.is_file()
    reviews, extra = metadata.data["train"]["source"].split(" + ")
    assert reviews.endswith("train.jsonl.gz")
    assert extra.endswith(f"corpora/{corpus.name}")


def _commands(script: str) -> dict[str, list[str]]:
    """Return {program: its words} for each command of a shell script (continuations joined)."""
    commands: dict[str, list[str]] = {}
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands[Path(words[0]).name] = words
    return commands


def _options(words: list[str]) -> dict[str, str]:
    """Return {flag: value} of a command line ('' for a switch)."""
    options: dict[str, str] = {}
    for index, word in enumerate(words):
        if word.startswith("--"):
            flag, _, value = word.partition("=")
            following = words[index + 1] if index + 1 < len(words) else "--"
            options[flag] = value or ("" if following.startswith("--") else following)
    return options


def _job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load((ROOT / "k8s" / "training" / "job.yaml").read_text())
    return job


def _make_train() -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    done = subprocess.run(
        [make, "-n", "--no-print-directory", "train"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return _commands(done.stdout)["sentiment-train"]


def test_make_train_and_the_job_train_the_same_recipe() -> None:
    (container,) = _job()["spec"]["template"]["spec"]["containers"]
    job = _options(_commands(container["args"][0])["sentiment-train"])
    make = _options(_make_train())
    for options in (job, make):
        assert set(options) <= PER_RUN_FLAGS, "options belong in the recipe, not the command"
        assert recipe_path(options["--config"]).resolve() == DEFAULT_RECIPE
    # The same data roles in both (the Job must not drop pre-training, or validation).
    assert set(job) - {"--quiet"} == set(make) - {"--quiet"}
    assert {"--train", "--val", "--pretrain-unlabelled", "--out"} <= set(job)


def test_the_job_promotes_only_through_the_gate() -> None:
    spec = _job()["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    script = container["args"][0]
    commands = _commands(script)
    assert script.lstrip().startswith("set -eu")  # a failed step ends the script
    assert "ln" not in commands
    assert "mv" not in commands
    promote = _options(commands["sentiment-promote"])
    assert promote["--candidate"] == _options(commands["sentiment-train"])["--out"]
    assert promote["--current"] == "/models/current"
    assert promote["--data"] not in (
        _options(commands["sentiment-train"])[flag] for flag in ("--train", "--val")
    )
    assert list(commands).index("sentiment-promote") > list(commands).index("sentiment-train")
    # A refused promotion fails the Job without a retry that would train again.
    (fail,) = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert REFUSED in fail["onExitCodes"]["values"]
    # The serving overlay reads the link the gate swaps.
    overlay = (ROOT / "k8s" / "overlays" / "trained-model" / "kustomization.yaml").read_text()
    assert f"SENTIMENT_MODEL_DIR={promote['--current']}" in overlay
