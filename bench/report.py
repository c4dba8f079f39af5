"""Turn a benchmark run into a Markdown table, ratios and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _find(
    points: list[dict[str, Any]], server: str, workload: str, c: int
) -> dict[str, Any] | None:
    return next(
        (
            p
            for p in points
            if (p["server"], p["workload"], p["concurrency"]) == (server, workload, c)
        ),
        None,
    )


def best_limit(limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return the model's limit: the best batch throughput and the best single-text call.

    Each from whichever runtime does it faster (plain TF can win on big batches while XLA
    wins a single text by 7x): the service is judged against the best of both.
    """
    batch_name = max(limits, key=lambda name: limits[name]["batch_texts_per_s"])
    single_name = min(limits, key=lambda name: limits[name]["single_ms_p50"])
    return {
        **limits[batch_name],
        "single_ms_p50": limits[single_name]["single_ms_p50"],
        "single_ms_p99": limits[single_name]["single_ms_p99"],
        "batch_runtime": batch_name,
        "single_runtime": single_name,
    }


def ratios(run: dict[str, Any]) -> dict[str, float]:
    """Return the ratios the throughput targets are stated in."""
    points, limit = run["points"], run["limit"]
    out: dict[str, float] = {}
    for c in (32, 128):
        service = _find(points, "service", "imdb", c)
        if service:
            out[f"service/limit imdb c={c}"] = service["texts_per_s"] / limit["batch_texts_per_s"]
    service32, naive32 = _find(points, "service", "imdb", 32), _find(points, "naive", "imdb", 32)
    if service32 and naive32 and naive32["texts_per_s"]:
        out["service/naive imdb c=32"] = service32["texts_per_s"] / naive32["texts_per_s"]
    short = _find(points, "service", "short", 32)
    if short and service32:
        out["short/imdb texts/s c=32"] = short["texts_per_s"] / service32["texts_per_s"]
    multi = _find(points, "service", "multi32", 8)
    if multi:
        out["service/limit multi32 c=8"] = multi["texts_per_s"] / limit["batch_texts_per_s"]
    single = _find(points, "service", "imdb", 1)
    if single:
        out["c=1 p50 / single-text call"] = single["p50_ms"] / limit["single_ms_p50"]
        out["c=1 p99 / single-text call"] = single["p99_ms"] / limit["single_ms_p50"]
    ceiling = _find(points, "ceiling", "short", 32)
    if short and ceiling and ceiling["requests_per_s"]:
        out["short c=32 service/HTTP ceiling"] = short["requests_per_s"] / ceiling["requests_per_s"]
    offline = run.get("offline")
    if offline:
        out["offline scoring/limit"] = offline["texts_per_s"] / limit["batch_texts_per_s"]
    bulk = run.get("bulk")
    if bulk:
        out["bulk scoring/limit"] = bulk["texts_per_s"] / limit["batch_texts_per_s"]
    for workload in ("imdb", "short"):
        v2, ours = _find(points, "service-v2", workload, 32), _find(points, "service", workload, 32)
        if v2 and ours:
            out[f"V2/predict {workload} c=32"] = v2["texts_per_s"] / ours["texts_per_s"]
    loaded = _find(points, "service+explain", "imdb", 32)
    if loaded and service32:
        out["predict under explain load/alone imdb c=32"] = (
            loaded["texts_per_s"] / service32["texts_per_s"]
        )
    for workload, c in (("imdb", 32), ("imdb", 128), ("short", 32)):
        ours = _find(points, "service", workload, c)
        peers = [_find(points, peer, workload, c) for peer in PEERS]
        best = max((p["texts_per_s"] for p in peers if p), default=0.0)
        if ours and best:
            out[f"service/best peer {workload} c={c}"] = ours["texts_per_s"] / best
    for design in sorted(
        {p["server"] for p in points if p["server"] in DESIGNS or p["server"].startswith("proto-")}
    ):
        found = _find(points, design, "short", 32)
        if found and ceiling and ceiling["requests_per_s"]:
            out[f"{design} short c=32/HTTP ceiling"] = (
                found["requests_per_s"] / ceiling["requests_per_s"]
            )
        for c in (32, 128):
            found = _find(points, design, "imdb", c)
            if found:
                out[f"{design}/limit imdb c={c}"] = (
                    found["texts_per_s"] / limit["batch_texts_per_s"]
                )
        found = _find(points, design, "imdb", 1)
        if found:
            out[f"{design} c=1 p50 / single-text call"] = found["p50_ms"] / limit["single_ms_p50"]
            out[f"{design} c=1 p99 / single-text call"] = found["p99_ms"] / limit["single_ms_p50"]
    return out


PEERS = ("litserve", "bentoml")
# The shipped service in its other mode, measured beside it (SENTIMENT_INFERENCE=worker).
DESIGNS = ("service-worker",)


# The serving-core targets (issue 13): ratio name -> (comparison, bound).
TARGETS: dict[str, tuple[str, float]] = {
    "short c=32 service/HTTP ceiling": (">=", 0.5),
    "service/limit imdb c=128": (">=", 0.7),
    "service/limit imdb c=32": (">=", 0.6),
    "c=1 p50 / single-text call": ("<=", 1.3),
    "c=1 p99 / single-text call": ("<=", 2.0),
    "offline scoring/limit": (">=", 0.7),
    "bulk scoring/limit": (">=", 0.7),
    "cold_ready_s": ("<=", 20.0),
    "warm_ready_s": ("<=", 10.0),
    "pod_rss_mb_max": ("<=", 1500.0),
    # The same bound on PSS: each page counted once, as the pod's memory cgroup charges it.
    "pod_pss_mb_after_load": ("<=", 1500.0),
    "service/best peer imdb c=32": (">=", 2.0),
    "service/best peer imdb c=128": (">=", 2.0),
    "service/best peer short c=32": (">=", 2.0),
}


def target_rows(run: dict[str, Any]) -> list[str]:
    """Return Markdown rows: each target, the measured value and whether it is met."""
    values = {**ratios(run), **run.get("starts", {})}
    rows = []
    for name, (comparison, bound) in TARGETS.items():
        if name not in values:
            continue
        value = values[name]
        met = value >= bound if comparison == ">=" else value <= bound
        rows.append(
            f"| {name} | {value:.3f} | {comparison} {bound:g} | {'met' if met else 'MISSED'} |"
        )
    return rows


def markdown(run: dict[str, Any]) -> str:
    """Render the run as Markdown."""
    limit = run["limit"]
    lines = [
        f"# Throughput benchmark ({run['date']})",
        "",
        f"Machine: {run['machine']}; {run['seconds_per_run']} s per run; load generator (wrk) "
        "on the same machine.",
        "",
        f"Model limit (in-process, best runtime for each): batches of {limit['batch']} padded "
        f"to {limit['maxlen']}: **{limit['batch_texts_per_s']:.0f} texts/s** "
        f"({limit.get('batch_runtime', '?')}); one text: {limit['single_ms_p50']:.1f} ms p50, "
        f"{limit['single_ms_p99']:.1f} ms p99 ({limit.get('single_runtime', '?')}).",
        "",
        *[
            f"- {name}: {found['batch_texts_per_s']:.0f} texts/s in batches of {found['batch']}, "
            f"one text {found['single_ms_p50']:.1f} ms p50"
            for name, found in run.get("limits", {}).items()
        ],
        "",
        "| server | workload | concurrency | texts/s | p50 ms | p99 ms | errors | requests |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in run["points"]:
        lines.append(
            f"| {p['server']} | {p['workload']} | {p['concurrency']} | {p['texts_per_s']:.1f} "
            f"| {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {p['errors']} | {p['requests']} |"
        )
    lines += ["", "| ratio | value |", "| --- | ---: |"]
    lines += [f"| {name} | {value:.2f} |" for name, value in ratios(run).items()]
    starts = run.get("starts", {})
    if starts:
        lines += ["", "| start and memory | value |", "| --- | ---: |"]
        lines += [f"| {name} | {value:.1f} |" for name, value in starts.items()]
    memory = run.get("memory_mb", {})
    if memory:
        lines += [
            "",
            "Memory of all a server's processes, MB: RSS, the peak under load, sums each "
            "process's resident pages, so pages shared between workers count once per worker; "
            "PSS, read once right after the load, counts each page once, as the pod's memory "
            "cgroup does.",
            "",
            "| server | RSS | PSS |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {name} | {sizes['rss']:.0f} | {sizes['pss']:.0f} |"
            for name, sizes in memory.items()
        ]
    offline = run.get("offline")
    if offline:
        lines += [
            "",
            f"Offline scoring (`sentiment-evaluate`, whole process): {offline['texts']} texts in "
            f"{offline['seconds']:.1f} s = {offline['texts_per_s']:.0f} texts/s.",
        ]
    bulk = run.get("bulk")
    if bulk:
        lines += [
            "",
            f"Bulk scoring (`sentiment-predict`, local engine, whole process): {bulk['texts']} "
            f"texts in {bulk['seconds']:.1f} s = {bulk['texts_per_s']:.0f} texts/s.",
        ]
    lines += [
        "",
        "| target | measured | bound | |",
        "| --- | ---: | --- | --- |",
        *target_rows(run),
    ]
    return "\n".join(lines) + "\n"


def plot(run: dict[str, Any], path: Path) -> None:
    """Plot throughput and p99 against concurrency: the limit, the service, naive, the peers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    styles = (("service", "o-"), ("naive", "s--"), ("litserve", "^:"), ("bentoml", "v:"))
    for server, style in styles:
        points = sorted(
            (p for p in run["points"] if p["server"] == server and p["workload"] == "imdb"),
            key=lambda p: p["concurrency"],
        )
        if not points:
            continue
        xs = [p["concurrency"] for p in points]
        left.plot(xs, [p["texts_per_s"] for p in points], style, label=server)
        right.plot(xs, [p["p99_ms"] for p in points], style, label=server)
    left.axhline(
        run["limit"]["batch_texts_per_s"],
        color="gray",
        linestyle=":",
        label="model limit (batch 128)",
    )
    for axis, title in ((left, "IMDB texts/s"), (right, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    right.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_results(out: Path, run: dict[str, Any]) -> None:
    """Write latest.json, latest.md and latest.png into ``out``, and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(run, indent=2) + "\n")
    text = markdown(run)
    (out / "latest.md").write_text(text)
    plot(run, out / "latest.png")
    print(text)
