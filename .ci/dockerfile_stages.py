"""Read a Dockerfile's instructions and its last stage (standard library only).

Shared by .ci/check_deploy_consistency.py (run with the deploy venv) and by
tests/integration/test_container_command.py (run with the project's venv), so both read the
Dockerfile the same way.
"""

from __future__ import annotations

from pathlib import Path


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        # Comments are dropped, also inside a continued instruction; blank lines end nothing.
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the instructions of the last stage (the image `docker build` produces)."""
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]
