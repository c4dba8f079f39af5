"""`sentiment-serve`: what it checks and what it hands gunicorn before exec'ing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import cli


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record os.execv instead of replacing the test process with gunicorn."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append(list(argv)))
    # main() sets these in os.environ for gunicorn: setenv first so that undo restores them.
    for name in ("MALLOC_ARENA_MAX", "SENTIMENT_MODEL_DIR", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return calls


def test_execs_gunicorn_with_the_project_config(
    tiny_bundle: Path, exec_calls: list[list[str]]
) -> None:
    assert cli.main(["--model-dir", str(tiny_bundle)]) == 0
    assert exec_calls
    assert exec_calls[0][-len(cli.GUNICORN_ARGS) :] == cli.GUNICORN_ARGS


def test_caps_malloc_arenas_for_gunicorn_and_its_workers(
    tiny_bundle: Path, exec_calls: list[list[str]]
) -> None:
    cli.main(["--model-dir", str(tiny_bundle)])
    assert cli.os.environ["MALLOC_ARENA_MAX"] == str(cli.MALLOC_ARENAS)


def test_an_operators_malloc_arena_setting_wins(
    tiny_bundle: Path, exec_calls: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    cli.main(["--model-dir", str(tiny_bundle)])
    assert cli.os.environ["MALLOC_ARENA_MAX"] == "8"


def test_a_missing_bundle_stops_before_gunicorn(
    tmp_path: Path, exec_calls: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--model-dir", str(tmp_path / "nowhere")]) == 2
    assert not exec_calls
    assert "cannot start" in capsys.readouterr().err
