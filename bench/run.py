"""Throughput benchmark: the model's limit vs our service vs the naive baseline, in one run.

    make bench            # or: python -m bench.run --data ../shared/data/imdb/val.jsonl.gz

Starts each server on a free loopback port, drives it with wrk (installed from Debian if
missing) sending real IMDB reviews, and writes bench/results/latest.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.payloads import build_payloads
from bench.process_stats import tree_rss_mb
from bench.report import best_limit, write_results

HERE = Path(__file__).resolve().parent
LUA = HERE / "bodies.lua"
CONCURRENCY = (1, 8, 32, 128)


@dataclass
class Point:
    """One load-generator run."""

    server: str
    workload: str
    concurrency: int
    texts_per_request: int
    requests_per_s: float
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def free_port() -> int:
    """Return a loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_wrk() -> str:
    """Return the wrk binary, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get)...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(wrk: str, url: str, bodies: Path, concurrency: int, seconds: int) -> dict[str, float]:
    """Run wrk and parse throughput, latency percentiles and errors."""
    threads = min(concurrency, 2)
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(LUA),
            url,
            "--",
            str(bodies),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }


@dataclass
class Running:
    """A started server: its URL, its process and how long it took to answer."""

    url: str
    pid: int
    ready_s: float


@contextmanager
def server(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[Running]:
    """Start a server, wait for it to answer, yield it, stop it."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited; see {log}")
            try:
                probe = "/readyz" if "sentiment-serve" in command[0] else "/predict"
                reply = (
                    requests.get(url + probe, timeout=2)
                    if probe == "/readyz"
                    else requests.post(url + probe, json={"text": "warm up"}, timeout=30)
                )
                if reply.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{command[0]} not ready; see {log}")
        yield Running(url, process.pid, time.monotonic() - started)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def gunicorn_command(bin_dir: Path, app: str, workers: int, port: int) -> list[str]:
    """Return the command that serves a comparison app on gunicorn's sync workers."""
    return [
        str(bin_dir / "gunicorn"),
        *("-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120"),
        app,
    ]


def wait_compiled(log: Path, workers: int, running: Running, timeout: float = 600) -> float:
    """Wait until every worker logged "XLA programs ready"; return seconds since start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("XLA programs ready") >= workers:
            break
        time.sleep(0.5)
    return running.ready_s + (time.monotonic() - (deadline - timeout))


class RssSampler:
    """Samples a process tree's resident memory every half second; keeps the maximum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.max_mb = max(self.max_mb, tree_rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure_offline(bin_dir: Path, model_dir: Path, data: Path, work: Path) -> dict[str, float]:
    """Time `sentiment-evaluate` on the whole file, process start-up included."""
    started = time.monotonic()
    subprocess.run(
        [
            str(bin_dir / "sentiment-evaluate"),
            *("--model-dir", str(model_dir), "--data", str(data)),
            *("--out", str(work / "offline-report.json")),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.monotonic() - started
    count = json.loads((work / "offline-report.json").read_text())["count"]
    return {"texts": count, "seconds": seconds, "texts_per_s": count / seconds}


def measure_server(
    name: str,
    url: str,
    *,
    payloads: dict[str, Path],
    wrk: str,
    seconds: int,
    plan: list[tuple[str, int]],
) -> list[Point]:
    """Warm up, then run every (workload, concurrency) of the plan."""
    run_wrk(wrk, url + "/predict", payloads["imdb"], 8, 3)  # warm-up, not recorded
    points = []
    for workload, concurrency in plan:
        texts = 32 if workload == "multi32" else 1
        result = run_wrk(wrk, url + "/predict", payloads[workload], concurrency, seconds)
        point = Point(
            name,
            workload,
            concurrency,
            texts,
            result["requests_per_s"],
            result["requests_per_s"] * texts,
            result["p50_ms"],
            result["p99_ms"],
            int(result["errors"]),
            int(result["requests"]),
        )
        print(
            f"{name:>8} {workload:>7} c={concurrency:<4} {point.texts_per_s:8.1f} texts/s  "
            f"p50 {point.p50_ms:7.1f} ms  p99 {point.p99_ms:7.1f} ms  errors {point.errors}",
            flush=True,
        )
        points.append(point)
    return points


def main() -> None:
    """Run the whole benchmark and write the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb/val.jsonl.gz"))
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    wrk = ensure_wrk()
    work = args.out / "raw"
    payloads = build_payloads(args.data, work)
    bin_dir = Path(sys.executable).parent
    env = {
        "SENTIMENT_MODEL_DIR": str(args.model_dir.resolve()),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SENTIMENT_HOST": "127.0.0.1",
    }

    print("measuring the model's limit in-process (XLA and plain TF)...", flush=True)
    limits = {}
    for name, flags in (("xla", []), ("tf", ["--no-xla"])):
        output = subprocess.run(
            [sys.executable, "-m", "bench.model_limit", "--model-dir", str(args.model_dir), *flags],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **env},
        ).stdout
        limits[name] = json.loads(output.strip().splitlines()[-1])
        print(
            f"   {name}: {limits[name]['batch_texts_per_s']:.0f} texts/s in batches of "
            f"{limits[name]['batch']}, single text {limits[name]['single_ms_p50']:.1f} ms",
            flush=True,
        )
    limit = best_limit(limits)

    full_plan = [("imdb", c) for c in CONCURRENCY] + [("short", 32), ("multi32", 8)]
    points: list[Point] = []
    starts: dict[str, float] = {}
    workers = int(os.environ.get("SENTIMENT_WORKERS", "2"))
    cache = work / f"xla-cache-{int(time.time())}"  # empty: the first start compiles everything
    service_env = {
        **env,
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        "SENTIMENT_XLA_CACHE_DIR": str(cache),
        "SENTIMENT_WORKERS": str(workers),
    }
    for start in ("cold", "warm"):
        port = free_port()
        log = work / f"service-{start}.log"
        with server(
            [str(bin_dir / "sentiment-serve")],
            port,
            {**service_env, "SENTIMENT_PORT": str(port)},
            log,
        ) as running:
            starts[f"{start}_ready_s"] = running.ready_s
            starts[f"{start}_all_compiled_s"] = wait_compiled(log, workers, running)
            print(
                f"service {start} start: ready in {running.ready_s:.1f} s, every XLA program "
                f"in {starts[f'{start}_all_compiled_s']:.1f} s",
                flush=True,
            )
            if start == "cold":
                with RssSampler(running.pid) as rss:
                    points += measure_server(
                        "service",
                        running.url,
                        payloads=payloads,
                        wrk=wrk,
                        seconds=args.seconds,
                        plan=full_plan,
                    )
                starts["pod_rss_mb_max"] = rss.max_mb
                print(f"service pod RSS under load: max {rss.max_mb:.0f} MB", flush=True)
    shutil.rmtree(cache, ignore_errors=True)

    ceiling_port = free_port()
    with server(
        gunicorn_command(bin_dir, "bench.ceiling_app:create_app()", workers, ceiling_port),
        ceiling_port,
        env,
        work / "ceiling.log",
    ) as running:
        points += measure_server(
            "ceiling",
            running.url,
            payloads=payloads,
            wrk=wrk,
            seconds=args.seconds,
            plan=[("short", 32)],
        )
    if not args.skip_naive:
        naive_port = free_port()
        with server(
            gunicorn_command(bin_dir, "bench.naive_app:create_app()", workers, naive_port),
            naive_port,
            env,
            work / "naive.log",
        ) as running:
            naive_plan = [("imdb", c) for c in CONCURRENCY]
            points += measure_server(
                "naive",
                running.url,
                payloads=payloads,
                wrk=wrk,
                seconds=args.seconds,
                plan=naive_plan,
            )
    offline = measure_offline(bin_dir, args.model_dir, args.data, work)
    print(f"offline scoring: {offline['texts_per_s']:.0f} texts/s, whole process", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    write_results(
        args.out,
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine,
            "seconds_per_run": args.seconds,
            "limit": limit,
            "limits": limits,
            "starts": starts,
            "offline": offline,
            "points": [asdict(p) for p in points],
        },
    )


if __name__ == "__main__":
    main()
