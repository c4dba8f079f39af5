"""Print the requirements of pyproject.toml's [project] dependencies plus the chosen extras.

The image build installs this list before it copies any code, so the dependency layer stays
cached while only the code changes:

    python requirements.py pyproject.toml cpu          # serving, tensorflow-cpu
    python requirements.py pyproject.toml gpu train    # training on a GPU

Extras may also be given comma-separated (``cpu,train``). ``cpu`` and ``gpu`` both provide the
``tensorflow`` module, so asking for both is an error, as is an extra pyproject.toml lacks.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

EXCLUSIVE = frozenset({"cpu", "gpu"})


def requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """Return the base dependencies followed by those of each extra, in order, without repeats."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise ValueError(f"unknown extra(s) {unknown}; {pyproject} defines {sorted(optional)}")
    if set(extras) >= EXCLUSIVE:
        raise ValueError("choose one of the extras cpu and gpu, not both")
    lines: list[str] = []
    for requirement in [*project["dependencies"], *(r for e in extras for r in optional[e])]:
        if requirement not in lines:
            lines.append(requirement)
    return lines


def main(argv: Sequence[str]) -> int:
    """Print one requirement per line; exit 2 with a message on bad arguments."""
    if not argv:
        print("usage: requirements.py PYPROJECT [EXTRA[,EXTRA] ...]", file=sys.stderr)
        return 2
    extras = [extra for arg in argv[1:] for extra in arg.split(",") if extra]
    try:
        print("\n".join(requirements(Path(argv[0]), extras)))
    except (OSError, KeyError, ValueError) as exc:
        print(f"requirements.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
