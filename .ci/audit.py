"""`make audit`: pip-audit of every package in constraints.txt, with an honest summary.

    .venv/bin/python .ci/audit.py [--constraints constraints.txt] [--service pypi|osv]

pip-audit checks each pinned package against an advisory service (PyPI's per-release JSON
API by default, or OSV). A package it could not look up is skipped, and without --strict it
still says "No known vulnerabilities found"; with --strict it stops at the first one. This
script runs it without --strict, reads its JSON report and prints which packages were
checked, which known vulnerabilities they have, and which could not be checked and why (it
asks the service once itself to tell "unreachable" from "not on PyPI"). It exits 0 only when
every package was checked and none has a known vulnerability.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {
    "pypi": "https://pypi.org/pypi/{name}/{version}/json",
    "osv": "https://api.osv.dev/v1/query",
}
NOT_COVERED = "the gpu extra's nvidia-* packages (not pinned in constraints.txt)"


def read_pins(path: Path) -> dict[str, str]:
    """Return {name: version} of the `name==version` lines of a constraints file."""
    pins: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def probe(service: str, name: str, version: str, timeout_s: float = 10.0) -> str | None:
    """Ask the advisory service about one package; return why it failed, or None if it answered."""
    url = SERVICES[service].format(name=name, version=version)
    if service == "osv":
        body = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
    else:
        request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return None
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def run_pip_audit(constraints: Path, service: str) -> tuple[list[dict[str, Any]] | None, str]:
    """Run pip-audit on the pinned list; return (its dependencies, or None if it failed; stderr)."""
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "audit.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--requirement",
            str(constraints),
            "--no-deps",  # the file is the whole closure already, every line pinned
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(report),
            "--progress-spinner",
            "off",
            "--aliases",
            "on",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        try:
            dependencies: list[dict[str, Any]] = json.loads(report.read_text())["dependencies"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, done.stderr
        return dependencies, done.stderr


def summarize(
    pins: dict[str, str],
    dependencies: list[dict[str, Any]] | None,
    unreachable: Callable[[str, str], str | None],
    stderr: str = "",
) -> tuple[list[str], bool]:
    """Return the report's lines and whether the audit passed (everything checked, clean).

    ``unreachable(name, version)`` asks the service about one package (see ``probe``).
    """
    if dependencies is None:
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
        return [
            f"could not check any of the {len(pins)} pinned packages: pip-audit failed "
            f"(advisory service unreachable?): {last.strip() or 'no output'}",
            f"not covered either: {NOT_COVERED}",
            "FAILED: nothing was audited",
        ], False
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    checked = [dep for dep in dependencies if not dep.get("skip_reason")]
    vulnerable = [dep for dep in checked if dep.get("vulns")]
    lines = [f"checked {len(checked)} of {len(pins)} pinned packages" + (":" if checked else "")]
    lines += _names(checked, pins)
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            lines.append(
                f"  VULNERABLE {dep['name']} {dep.get('version', '?')}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f", fixed in: {fixes}"
            )
    count = sum(len(dep["vulns"]) for dep in vulnerable)
    lines.append(
        f"known vulnerabilities: {count} in {len(vulnerable)} packages"
        if vulnerable
        else "known vulnerabilities: none in the checked packages"
    )
    if skipped:
        first = skipped[0]["name"]
        reason = unreachable(first, pins.get(first, ""))
        why = (
            f"advisory service unreachable ({reason})"
            if reason
            else "the service answered, but pip-audit could not look these up"
        )
        lines.append(f"could not check {len(skipped)} packages: {why}:")
        lines += _names(skipped, pins)
        lines.append(f"  (pip-audit, e.g.: {skipped[0]['skip_reason']})")
    lines.append(f"not covered: {NOT_COVERED}")
    passed = not vulnerable and not skipped
    if passed:
        lines.append("passed: every pinned package checked, no known vulnerabilities")
    else:
        problems = []
        if vulnerable:
            problems.append(f"{count} known vulnerabilities")
        if skipped:
            problems.append(f"{len(skipped)} of {len(pins)} packages could not be checked")
        lines.append("FAILED: " + "; ".join(problems))
    return lines, passed


def _names(dependencies: list[dict[str, Any]], pins: dict[str, str]) -> list[str]:
    """Return the packages as `name version` items wrapped into indented lines."""
    items = ", ".join(f"{dep['name']} {pins.get(dep['name'], '?')}" for dep in dependencies)
    return textwrap.wrap(
        items, width=96, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Audit, print the summary, exit 1 unless everything was checked and clean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--service", choices=sorted(SERVICES), default="pypi")
    args = parser.parse_args(argv)
    pins = read_pins(args.constraints)
    print(f"make audit: pip-audit, service {args.service}, {args.constraints.name}")
    dependencies, stderr = run_pip_audit(args.constraints, args.service)
    lines, passed = summarize(
        pins, dependencies, lambda name, version: probe(args.service, name, version), stderr
    )
    for line in lines:
        print(line if line.startswith("  ") else f"make audit: {line}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
