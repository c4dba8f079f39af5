"""Settings derived from the machine: the container's CPU quota decides TensorFlow's threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import _cgroup_cpu_quota


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(("content", "cpus"), [("150000 100000\n", 1.5), ("max 100000\n", None)])
def test_cgroup_v2_quota(tmp_path: Path, content: str, cpus: float | None) -> None:
    _write(tmp_path, "cpu.max", content)
    assert _cgroup_cpu_quota(tmp_path) == cpus


@pytest.mark.parametrize("directory", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_quota(tmp_path: Path, directory: str) -> None:
    _write(tmp_path, f"{directory}/cpu.cfs_quota_us", "200000\n")
    _write(tmp_path, f"{directory}/cpu.cfs_period_us", "100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 2.0


def test_cgroup_v1_unlimited_and_no_cgroup(tmp_path: Path) -> None:
    assert _cgroup_cpu_quota(tmp_path) is None
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
