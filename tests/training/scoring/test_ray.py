"""The Ray engine gives the local engine's rows, row for row (local Ray, 2 CPUs, 2 actors)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tests.training.scoring.files import make_rows, read_rows, write_rows
from training.scoring.local import ScoringOptions, score_file
from training.scoring.predict import Scorer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed (pip install 'sentiment-service[ray]'; the dev extra has it)",
)
ROWS = 3_000


def _predict(*arguments: str) -> dict[str, object]:
    # A child process: Ray's own threads, logs and warnings stay out of the test process.
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "training.scoring", "--quiet", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def test_ray_engine_equals_the_local_engine(
    tiny_bundle: Path, scorer: Scorer, tmp_path: Path
) -> None:
    data = write_rows(tmp_path / "in.jsonl", make_rows(ROWS, seed=9))
    with data.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": ROWS, "label": 0, "note": "no text"}) + "\n")
    common = ("--model-dir", str(tiny_bundle), "--data", str(data), "--chunk-rows", "500")
    options = ScoringOptions(data=data, out=tmp_path / "local.parquet", chunk_rows=500)
    local = asdict(score_file(scorer, options))
    remote = _predict(
        *common,
        *("--out", str(tmp_path / "ray.parquet"), "--engine", "ray"),
        *("--actors", "2", "--local-cpus", "2"),
    )
    assert (
        (remote["scored"], remote["rejected"])
        == (local["scored"], local["rejected"])
        == (
            ROWS,
            1,
        )
    )
    assert len(remote["extra"]["actor_start_s"]) == 2  # type: ignore[index]
    expected = read_rows(tmp_path / "local.parquet")
    got = sorted(read_rows(tmp_path / "ray.parquet"), key=lambda row: row["id"])
    assert [row["id"] for row in got] == [row["id"] for row in expected]
    assert list(got[0]) == list(expected[0])
    for column in ("text", "input_label", "note", "label"):
        assert [row[column] for row in got] == [row[column] for row in expected], column
    numbers = [name for name in expected[0] if name == "score" or name.startswith("prob_")]
    for column in numbers:
        np.testing.assert_allclose(
            [row[column] for row in got], [row[column] for row in expected], atol=1e-6
        )
    rejects = read_rows(tmp_path / "ray.parquet.rejects.jsonl")
    assert rejects[0]["row"]["id"] == ROWS
