"""The local engine: formats, columns carried, rejects, --strict, atomic output, resume."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.training.scoring.files import make_rows, read_rows, write_rows
from training.errors import DataError, ScoringError
from training.scoring import local
from training.scoring.cli import main
from training.scoring.formats import detect_format, require_pyarrow_parquet
from training.scoring.local import ScoringOptions, score_file
from training.scoring.predict import Scorer
from training.scoring.progress import ProgressBar

SUFFIXES = ["csv", "tsv", "jsonl", "jsonl.gz", "parquet"]


def _score(scorer: Scorer, data: Path, out: Path, **options: Any) -> local.Summary:
    return score_file(scorer, ScoringOptions(data=data, out=out, **options))


@pytest.mark.parametrize("source", SUFFIXES)
@pytest.mark.parametrize("target", SUFFIXES)
def test_every_format_in_and_out_carries_every_column(
    scorer: Scorer, tmp_path: Path, source: str, target: str
) -> None:
    rows = make_rows(40)
    data = write_rows(tmp_path / f"in.{source}", rows)
    out = tmp_path / f"out.{target}"
    summary = _score(scorer, data, out, chunk_rows=16)
    assert (summary.rows, summary.scored, summary.rejected) == (40, 40, 0)
    scored = read_rows(out)
    columns = ["id", "text", "input_label", "note", "label", "score"]
    assert list(scored[0]) == columns + [f"prob_{label}" for label in scorer.labels]
    assert [str(row["id"]) for row in scored] == [str(row["id"]) for row in rows]
    assert [row["text"] for row in scored] == [row["text"] for row in rows]
    assert {row["label"] for row in scored} <= set(scorer.labels)
    probabilities = np.array([[float(row[f"prob_{x}"]) for x in scorer.labels] for row in scored])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert not out.with_name(out.name + ".parts").exists()
    assert not out.with_name(out.name + ".rejects.jsonl").exists()


def test_input_labels_do_not_change_the_scores(scorer: Scorer, tmp_path: Path) -> None:
    rows = make_rows(30)
    flipped = [{**row, "label": 1 - row["label"]} for row in rows]
    first = read_rows(_score_to(scorer, tmp_path / "a", rows))
    second = read_rows(_score_to(scorer, tmp_path / "b", flipped))
    assert [(r["label"], r["score"]) for r in first] == [(r["label"], r["score"]) for r in second]
    assert [r["input_label"] for r in second] == [row["label"] for row in flipped]


def _score_to(scorer: Scorer, directory: Path, rows: list[dict[str, Any]]) -> Path:
    directory.mkdir()
    out = directory / "out.jsonl"
    _score(scorer, write_rows(directory / "in.jsonl", rows), out)
    return out


def _bad_jsonl(path: Path) -> Path:
    good = [json.dumps(row).encode() for row in make_rows(5)]
    lines = [
        good[0],
        b'{"id": 101}',  # line 2: no text
        good[1],
        b'{"id": 103, "text": 5}',  # line 4: not a string
        b'{"id": 104, "text": null}',  # line 5
        b"",  # line 6: blank, skipped
        b"not json",  # line 7
        b'{"id": 108, "text": "caf\xe9"}',  # line 8: latin-1, not UTF-8
        b"[1, 2]",  # line 9
        *good[2:],
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_rows_go_to_the_rejects_file_with_file_and_line(scorer: Scorer, tmp_path: Path) -> None:
    data = _bad_jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    summary = _score(scorer, data, out, chunk_rows=3)
    assert (summary.rows, summary.scored, summary.rejected) == (11, 5, 6)
    assert [row["id"] for row in read_rows(out)] == [0, 1, 2, 3, 4]
    rejects = read_rows(Path(summary.rejects or ""))
    assert [(r["file"], r["line"]) for r in rejects] == [(str(data), n) for n in (2, 4, 5, 7, 8, 9)]
    reasons = [r["reason"] for r in rejects]
    assert "missing text column 'text'" in reasons[0]
    assert "int, not a string" in reasons[1]
    assert "invalid JSON" in reasons[3]
    assert "not valid UTF-8" in reasons[4]
    assert "expected a JSON object" in reasons[5]


def test_bad_csv_records_are_rejected_alone(scorer: Scorer, tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(b'id,text\n1,fine film\n2,caf\xe9 bad\n3,too,many\n4,"great\nfun"\n5,dull\n')
    out = tmp_path / "out.csv"
    summary = _score(scorer, data, out)
    assert [row["id"] for row in read_rows(out)] == ["1", "4", "5"]
    rejects = read_rows(tmp_path / "out.csv.rejects.jsonl")
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (3, "not valid UTF-8"),
        (4, "expected 2 fields as in the header, found 3"),
    ]
    assert summary.rejected == 2


def test_strict_fails_on_the_first_bad_row_and_writes_no_output(
    scorer: Scorer, tmp_path: Path
) -> None:
    data = _bad_jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as caught:
        _score(scorer, data, out, strict=True)
    assert (caught.value.path, caught.value.line) == (str(data), 2)
    assert not out.exists()


class _Interrupted(Exception):
    pass


def _fail_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    """Make the model call fail once ``chunks`` chunks have been scored."""
    calls = {"n": 0}
    real = Scorer.probabilities

    def probabilities(self: Scorer, encoded: Any) -> np.ndarray:
        if calls["n"] == chunks:
            raise _Interrupted
        calls["n"] += 1
        return real(self, encoded)

    monkeypatch.setattr(Scorer, "probabilities", probabilities)


@pytest.mark.parametrize("target", ["jsonl", "csv.gz", "parquet"])
def test_resume_after_an_interruption_gives_the_uninterrupted_rows(
    scorer: Scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    data = _bad_jsonl(tmp_path / "in.jsonl")
    write_rows(data, make_rows(100))
    with data.open("ab") as handle:
        handle.write(b'{"id": 100}\n')  # a reject in the last chunk
    whole = tmp_path / f"whole.{target}"
    expected = _score(scorer, data, whole, chunk_rows=16)
    out = tmp_path / f"out.{target}"
    with monkeypatch.context() as patch:
        _fail_after(patch, 3)
        with pytest.raises(_Interrupted):
            _score(scorer, data, out, chunk_rows=16)
    assert not out.exists(), "an interrupted run left a (half-written) output"
    assert len(list(out.with_name(out.name + ".parts").glob("*.json"))) == 1 + 3
    resumed = _score(scorer, data, out, chunk_rows=16, resume=True)
    assert resumed.resumed_chunks == 3
    assert (resumed.rows, resumed.scored, resumed.rejected) == (
        expected.rows,
        expected.scored,
        expected.rejected,
    )
    assert read_rows(out) == read_rows(whole)
    assert not out.with_name(out.name + ".parts").exists()


def test_resume_refuses_a_changed_input(
    scorer: Scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_rows(tmp_path / "in.jsonl", make_rows(40))
    out = tmp_path / "out.jsonl"
    with monkeypatch.context() as patch:
        _fail_after(patch, 1)
        with pytest.raises(_Interrupted):
            _score(scorer, data, out, chunk_rows=16)
    write_rows(data, make_rows(41))
    with pytest.raises(ScoringError, match="input_size"):
        _score(scorer, data, out, chunk_rows=16, resume=True)


def test_scores_equal_the_services(tiny_bundle: Path, scorer: Scorer, tmp_path: Path) -> None:
    from service.decoding import Predictions
    from service.predictor import Predictor

    rows = make_rows(300, seed=5)
    out = tmp_path / "out.jsonl"
    _score(scorer, write_rows(tmp_path / "in.jsonl", rows), out, chunk_rows=64)
    predictor = Predictor(tiny_bundle)
    predictor.load(warmup=False)
    texts = [row["text"] for row in rows]
    served = Predictions.decode(predictor.predict_encoded(predictor.encode(texts)), scorer.labels)
    scored = read_rows(out)
    for mine, theirs in zip(scored, served.as_dicts(), strict=True):
        assert mine["label"] == theirs["label"]
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-6)
        for label, probability in theirs["probabilities"].items():
            assert mine[f"prob_{label}"] == pytest.approx(probability, abs=1e-6)


def test_cli_prints_a_summary_and_fails_with_2_under_strict(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _bad_jsonl(tmp_path / "in.jsonl")
    common = ["--model-dir", str(tiny_bundle), "--data", str(data), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "out.tsv")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["scored"], summary["rejected"]) == (5, 6)
    assert main([*common, "--out", str(tmp_path / "strict.tsv"), "--strict"]) == 2
    assert f"{data}:2: missing text column" in capsys.readouterr().err
    assert not (tmp_path / "strict.tsv").exists()


def test_format_comes_from_the_extension_or_the_flag(tmp_path: Path) -> None:
    assert detect_format("a/b.JSONL.gz") == "jsonl"
    assert detect_format("b.parquet") == "parquet"
    assert detect_format("b.txt", "tsv") == "tsv"
    with pytest.raises(ScoringError, match="--format"):
        detect_format("b.txt")


def test_parquet_without_pyarrow_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ScoringError, match=r"sentiment-service\[parquet\]"):
        require_pyarrow_parquet()


def test_gzip_output_is_one_valid_gzip_stream(scorer: Scorer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl.gz"
    _score(scorer, write_rows(tmp_path / "in.jsonl", make_rows(50)), out, chunk_rows=8)
    assert len(gzip.decompress(out.read_bytes()).splitlines()) == 50


def test_progress_bar_shows_rate_and_eta_on_a_terminal_only() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    bar.update(500, 0.5, force=True)
    assert "texts/s" in stream.getvalue()
    assert "ETA" in stream.getvalue()
    quiet = io.StringIO()  # not a TTY
    ProgressBar(quiet).update(500, 0.5, force=True)
    assert quiet.getvalue() == ""
