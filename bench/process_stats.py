"""Memory of a server's whole process tree (the pod's cost), from /proc.

Two sums: RSS counts every page each process maps, so a shared library page mapped by both
workers (TensorFlow's ~550 MB of code and data) counts twice; PSS divides each shared page
among the processes that map it, so its sum counts every page once, as the pod's memory
cgroup charges it.
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


def memory_mb(pid: int) -> tuple[float, float]:
    """Return one process's (RSS, PSS) in MB ((0, 0) if it is gone)."""
    try:
        rollup = (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:] if ":" in line}
    return fields.get("Rss", 0) / 1024, fields.get("Pss", 0) / 1024


def tree_memory_mb(root: int) -> tuple[float, float]:
    """Return the summed (RSS, PSS) of ``root`` and its descendants, in MB."""
    sizes = [memory_mb(pid) for pid in process_tree(root)]
    return sum(rss for rss, _ in sizes), sum(pss for _, pss in sizes)
