"""Supply chain: the pinned versions are what is installed, every install path uses them, the
Keras floor holds, and `make audit` says what it could not check."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"


def _load(name: str) -> ModuleType:
    """Load a script of .ci/ (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOCK = _load("lock_constraints")
AUDIT = _load("audit")
DOCKERFILE_STAGES = _load("dockerfile_stages")


def _installed() -> dict[str, str]:
    installed: dict[str, str] = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    installed.pop(canonicalize_name(LOCK.PROJECT), None)
    return installed


def test_constraints_pin_every_installed_distribution_at_its_version() -> None:
    pins = LOCK.read_constraints(CONSTRAINTS)
    installed = _installed()
    unpinned = sorted(
        name
        for name in installed
        if name not in pins and not name.startswith(LOCK.UNPINNED_PREFIXES)
    )
    assert not unpinned, (
        f"installed but not in constraints.txt: {unpinned}; a new dependency belongs in "
        "pyproject.toml, then `make lock`"
    )
    differ = {name: (installed[name], pins[name]) for name in installed.keys() & pins.keys()}
    differ = {name: versions for name, versions in differ.items() if versions[0] != versions[1]}
    assert not differ, f"installed vs constraints.txt: {differ}; run `make install` or `make lock`"
    variants = {LOCK.CPU_TENSORFLOW, LOCK.GPU_TENSORFLOW}  # one of them is installed
    assert not sorted(pins.keys() - installed.keys() - variants), "pinned but not installed"


def test_constraints_are_what_make_lock_writes() -> None:
    try:
        closure = LOCK.dependency_closure()
    except LOCK.LockError as exc:  # e.g. a gpu venv: no tensorflow-cpu to lock
        pytest.skip(str(exc))
    expected = {**closure, LOCK.GPU_TENSORFLOW: closure[LOCK.CPU_TENSORFLOW]}
    assert LOCK.read_constraints(CONSTRAINTS) == expected


def _make_variable(name: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    done = subprocess.run(
        [make, "-s", "--no-print-directory", "--eval", "print-%: ; @echo $($*)", f"print-{name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_make_install_uses_the_constraints_and_a_well_formed_stamp() -> None:
    assert _make_variable("CONSTRAINTS") == "constraints.txt"
    assert _make_variable("STAMP") == ".venv/.installed-cpu-train-dev"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "$(CONSTRAINTS)" in rule.splitlines()[0], "the stamp must depend on the constraints"
    installs = [line for line in rule.splitlines() if "pip install" in line]
    assert len(installs) == 2
    assert all("-c $(CONSTRAINTS)" in line for line in installs)


def test_the_image_installs_with_the_constraints() -> None:
    instructions = DOCKERFILE_STAGES.dockerfile_instructions(ROOT / "Dockerfile")
    installs = [
        shlex.split(arguments)
        for keyword, arguments in instructions
        if keyword == "RUN" and "-r requirements.txt" in arguments
    ]
    assert len(installs) == 1
    words = installs[0]
    assert words[words.index("-c") + 1] == "constraints.txt"
    copies = " ".join(arguments for keyword, arguments in instructions if keyword == "COPY")
    assert "constraints.txt" in copies


def test_keras_has_a_floor_with_the_safe_mode_fixes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (keras,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "keras"]
    assert not keras.specifier.contains("3.13.9")
    assert keras.specifier.contains("3.14.0")
    assert Version(metadata.version("keras")) >= Version("3.14")


def _deps(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entries)


PINS = {"flask": "3.1.3", "keras": "3.15.1"}


def test_audit_reports_packages_it_could_not_check() -> None:
    skipped = _deps(
        {"name": "flask", "skip_reason": "Dependency not found on PyPI (flask)"},
        {"name": "keras", "skip_reason": "Dependency not found on PyPI (keras)"},
    )
    lines, passed = AUDIT.summarize(PINS, skipped, lambda name, version: "HTTP Error 404")
    assert not passed
    text = "\n".join(lines)
    assert "checked 0 of 2 pinned packages" in text
    assert "could not check 2 packages: advisory service unreachable (HTTP Error 404)" in text
    assert "flask 3.1.3, keras 3.15.1" in text
    assert lines[-1] == "FAILED: 2 of 2 packages could not be checked"


def test_audit_reports_vulnerabilities_and_passes_only_when_clean() -> None:
    clean = {"name": "flask", "version": "3.1.3", "vulns": []}
    vulnerable = {
        "name": "keras",
        "version": "3.15.1",
        "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.15.2"], "aliases": ["CVE-1"]}],
    }
    lines, passed = AUDIT.summarize(PINS, _deps(clean, vulnerable), lambda *_: None)
    assert not passed
    assert "  VULNERABLE keras 3.15.1: PYSEC-1 (CVE-1), fixed in: 3.15.2" in lines
    lines, passed = AUDIT.summarize(
        PINS, _deps(clean, {**vulnerable, "vulns": []}), lambda *_: None
    )
    assert passed
    assert "checked 2 of 2 pinned packages:" in lines


def test_audit_that_could_not_run_fails() -> None:
    lines, passed = AUDIT.summarize(PINS, None, lambda *_: None, "Traceback\nConnectionError: x\n")
    assert not passed
    assert "could not check any of the 2 pinned packages" in lines[0]
    assert "ConnectionError: x" in lines[0]
