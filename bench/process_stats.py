"""Memory of a server's whole process tree (the pod's cost), from /proc.

Two sums: RSS counts every page each process maps, so a shared library page mapped by both
workers (TensorFlow's ~550 MB of code and data) counts twice; PSS divides each shared page
among the processes that map it, so its sum counts every page once, as the pod's memory
cgroup charges it. RSS is cheap to read (``status``: ~0.1 ms); PSS is not (``smaps_rollup``
walks every mapping: 11-18 ms per TensorFlow worker, holding its memory-map lock), so a
sampler under load reads RSS often and PSS rarely.
"""

from __future__ import annotations

from pathlib import Path


def parent_map() -> dict[int, list[int]]:
    """Return every running process's children, by parent pid."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name is in parentheses and may hold spaces: split after it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
    return parents


def children(pid: int) -> list[int]:
    """Return the child processes of ``pid`` (gunicorn's workers, for the master), sorted."""
    return sorted(parent_map().get(pid, []))


def process_tree(root: int) -> list[int]:
    """Return ``root`` and every descendant pid."""
    parents = parent_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def _proc_mb(pid: int, file: str, field: str) -> float:
    """Return a kB field of /proc/<pid>/<file> in MB (0 if the process is gone)."""
    try:
        for line in (Path("/proc") / str(pid) / file).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Return one process's resident set size in MB (0 if it is gone)."""
    return _proc_mb(pid, "status", "VmRSS")


def pss_mb(pid: int) -> float:
    """Return one process's proportional set size in MB (0 if it is gone)."""
    return _proc_mb(pid, "smaps_rollup", "Pss")


def tree_rss_mb(root: int) -> float:
    """Return the summed resident memory of ``root`` and its descendants, in MB."""
    return sum(rss_mb(pid) for pid in process_tree(root))


def tree_pss_mb(root: int) -> float:
    """Return the summed proportional memory of ``root`` and its descendants, in MB."""
    return sum(pss_mb(pid) for pid in process_tree(root))
