"""Schemathesis fuzzes the real server from the service's own OpenAPI document.

Every check is on: no 5xx, every status and body as documented, schema-valid requests
accepted and invalid ones refused, ``Allow`` headers right. Afterwards the workers that were
fuzzed are still the ones serving, and they answer as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.server import Server, json_log_entries
from tests.reliability.conftest import assert_still_serving
from tests.reliability.harness import FUZZ_RUNS, report, run_schemathesis, wait_for_workers

pytestmark = pytest.mark.integration


def test_fuzzing_from_the_openapi_document(
    server: Server, reference: dict[str, Any], tmp_path: Path
) -> None:
    workers = wait_for_workers(server.process.pid, server.worker_processes)
    for name, arguments in FUZZ_RUNS:
        result = run_schemathesis(server, tmp_path, *arguments)
        output = result.stdout + result.stderr
        summary = [line.strip() for line in output.splitlines() if "generated" in line]
        report(name, exit=result.returncode, cases=summary[-1] if summary else "?")
        assert result.returncode == 0, output[-6000:]
        assert "No issues found" in output, output[-3000:]
    assert_still_serving(server, reference)
    assert wait_for_workers(server.process.pid, server.worker_processes) == workers
    failed = [entry for entry in json_log_entries(server.log()) if entry.get("status") == 500]
    assert not failed, failed[:3]
