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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.payloads import LISTED, V2, build_payloads
from bench.process_stats import tree_pss_mb, tree_rss_mb
from bench.report import DESIGNS, best_limit, write_results
from service.config import Settings
from training.bundle import read_metadata

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
def server(
    command: list[str],
    port: int,
    env: dict[str, str],
    log: Path,
    *,
    probe_body: dict[str, Any] | None = None,
    ready_timeout_s: float = 300,
) -> Iterator[Running]:
    """Start a server, wait for it to answer, yield it, stop it.

    Our service is ready when ``/readyz`` says so; any other server when ``POST /predict`` with
    ``probe_body`` (default ``{"text": "warm up"}``) answers 200.
    """
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
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited; see {log}")
            try:
                reply = (
                    requests.get(url + "/readyz", timeout=2)
                    if "sentiment-serve" in command[0]
                    else requests.post(
                        url + "/predict", json=probe_body or {"text": "warm up"}, timeout=30
                    )
                )
                if reply.status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # still starting
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


def compiling_processes(env: dict[str, str], workers: int) -> int:
    """Return how many processes of a ``sentiment-serve`` with ``env`` compile the model:
    the one model process (the default), or each worker with ``SENTIMENT_INFERENCE=worker``."""
    inference = env.get("SENTIMENT_INFERENCE", str(Settings.model_fields["inference"].default))
    return workers if inference == "worker" else 1


def wait_compiled(log: Path, workers: int, running: Running, timeout: float = 600) -> float:
    """Wait until ``workers`` processes logged "XLA programs ready"; return seconds since start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("XLA programs ready") >= workers:
            break
        time.sleep(0.5)
    return running.ready_s + (time.monotonic() - (deadline - timeout))


class MemorySampler:
    """Samples a process tree's RSS every half second and keeps the peak; reads its PSS once,
    on leaving, while the server still holds what the load made it allocate (reading PSS
    often would slow the server it measures: see bench.process_stats)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_rss_mb = 0.0
        self.pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.max_rss_mb = max(self.max_rss_mb, tree_rss_mb(self.pid))

    @property
    def sizes_mb(self) -> dict[str, float]:
        """Return the RSS peak and the PSS read on leaving, as the report lists them."""
        return {"rss": self.max_rss_mb, "pss": self.pss_mb}

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.pss_mb = tree_pss_mb(self.pid)


def timed_scoring(command: list[str], count_texts: Callable[[], int]) -> dict[str, float]:
    """Run a scoring command to the end, start-up included; return its texts/s."""
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.monotonic() - started
    count = count_texts()
    return {"texts": count, "seconds": seconds, "texts_per_s": count / seconds}


def measure_offline(bin_dir: Path, model_dir: Path, data: Path, work: Path) -> dict[str, float]:
    """Time `sentiment-evaluate` on the whole file, process start-up included."""
    report = work / "offline-report.json"
    return timed_scoring(
        [
            str(bin_dir / "sentiment-evaluate"),
            *("--model-dir", str(model_dir), "--data", str(data), "--out", str(report)),
        ],
        lambda: int(json.loads(report.read_text())["count"]),
    )


def measure_server(
    name: str,
    url: str,
    *,
    payloads: dict[str, Path],
    wrk: str,
    seconds: int,
    plan: list[tuple[str, int]],
    listed: bool = False,
    suffix: str = "",
    path: str = "/predict",
) -> list[Point]:
    """Warm up, then run every (workload, concurrency) of the plan.

    ``listed``: send each text as ``{"texts": [text]}`` (peers whose batchable API takes lists);
    ``suffix``/``path``: another payload form and route (e.g. V2 requests to its infer route).
    """
    suffix = LISTED if listed else suffix
    run_wrk(wrk, url + path, payloads["imdb" + suffix], 8, 3)  # warm-up, not recorded
    points = []
    for workload, concurrency in plan:
        texts = 32 if workload == "multi32" else 1
        body = payloads[workload + suffix]
        result = run_wrk(wrk, url + path, body, concurrency, seconds)
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


# Peers and front-end prototypes: (server name, how to start it, payloads as lists?). Each runs
# from the bench environment (.venv-bench, the `bench` extra) on the same bundle and cores.
PEER_PLAN = [("imdb", 32), ("imdb", 128), ("short", 32)]
PROTOTYPE_PLAN = [("imdb", 1), *PEER_PLAN]


Launch = tuple[list[str], dict[str, str]]  # command, extra environment


def alternative_servers(bench_bin: Path) -> dict[str, Callable[[int], Launch]]:
    """Return name -> how to launch it on a port, for every peer and prototype."""
    serve = [str(bench_bin / "sentiment-serve")]
    return {
        # Peers, each configured as its docs recommend (see bench/peers/).
        "litserve": lambda port: (
            [str(bench_bin / "python"), "-m", "bench.peers.litserve_app", str(port)],
            {},
        ),
        "bentoml": lambda port: (
            [
                str(bench_bin / "bentoml"),
                *("serve", "bench.peers.bentoml_service:Sentiment"),
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            {"BENTOML_DO_NOT_TRACK": "true"},
        ),
        # The service's other inference mode, on the port SENTIMENT_PORT names: a model copy
        # in each gthread worker (the default before 2026-12-06; docs/performance.md has the
        # front-end designs measured before that choice).
        "service-worker": lambda port: (serve, {"SENTIMENT_INFERENCE": "worker"}),
    }


def measure_alternatives(
    bench_bin: Path,
    *,
    env: dict[str, str],
    payloads: dict[str, Path],
    wrk: str,
    seconds: int,
    work: Path,
    workers: int,
) -> tuple[list[Point], dict[str, dict[str, float]], dict[str, float]]:
    """Run the peers and prototypes; return their points, each one's memory (MB) and, for
    the service's other modes, seconds to ready (the shared compile cache is warm by then)."""
    points: list[Point] = []
    memory: dict[str, dict[str, float]] = {}
    ready: dict[str, float] = {}
    for name, launch in alternative_servers(bench_bin).items():
        port = free_port()
        command, extra = launch(port)
        listed = name == "bentoml"
        log = work / f"{name}.log"
        ours = name.startswith(("proto-", "service-"))
        try:
            with server(
                command,
                port,
                {**env, **extra, "SENTIMENT_PORT": str(port)},
                log,
                probe_body={"texts": ["warm up"]} if listed else None,
                ready_timeout_s=900,  # peers compile every XLA program before they answer
            ) as running:
                if name in DESIGNS:
                    ready[f"{name}_warm_ready_s"] = running.ready_s
                if ours:  # measured once every XLA program is compiled, as the service is
                    wait_compiled(log, compiling_processes(extra, workers), running)
                with MemorySampler(running.pid) as memory_sampler:
                    points += measure_server(
                        name,
                        running.url,
                        payloads=payloads,
                        wrk=wrk,
                        seconds=seconds,
                        plan=PROTOTYPE_PLAN if ours else PEER_PLAN,
                        listed=listed,
                    )
                memory[name] = memory_sampler.sizes_mb
        except RuntimeError as exc:  # one broken peer must not cost the whole run
            print(f"{name}: skipped: {exc}", flush=True)
    return points, memory, ready


def measure_protocols_and_explain(
    url: str, model_name: str, *, payloads: dict[str, Path], wrk: str, seconds: int
) -> list[Point]:
    """V2 inference at c=32 (beside /predict's), and /predict at c=32 under /explain load."""
    points = measure_server(
        "service-v2",
        url,
        payloads=payloads,
        wrk=wrk,
        seconds=seconds,
        plan=[("imdb", 32), ("short", 32)],
        suffix=V2,
        path=f"/v2/models/{model_name}/infer",
    )
    # Two clients keep /explain busy (each review: one model row per token) while /predict
    # is measured; the explain runs' own figures are not the point.
    explain = threading.Thread(
        target=run_wrk,
        args=(wrk, url + "/explain", payloads["imdb"], 2, seconds + 4),
        daemon=True,
    )
    explain.start()
    time.sleep(2)
    points += measure_server(
        "service+explain",
        url,
        payloads=payloads,
        wrk=wrk,
        seconds=seconds,
        plan=[("imdb", 32)],
    )
    explain.join()
    return points


def offline_corpus(data: Path, work: Path) -> Path:
    """Return the file offline scoring is timed on: IMDB's 25,000 labelled training reviews.

    That is train + val beside ``data`` (20,000 + 5,000, as the dataset ships them): long
    enough that start-up does not dominate; gzip members concatenate into one valid file.
    ``data`` alone where the train file is not there.
    """
    train = data.parent / "train.jsonl.gz"
    if not train.is_file():
        return data
    corpus = work / "imdb-25k.jsonl.gz"
    with corpus.open("wb") as out:
        for part in (train, data):
            out.write(part.read_bytes())
    return corpus


def measure_bulk(bin_dir: Path, model_dir: Path, data: Path, work: Path) -> dict[str, float]:
    """Time `sentiment-predict` (bulk scoring, local engine) on the file, start-up included."""
    out = work / "bulk-predictions.jsonl"

    def count_rows() -> int:
        with out.open("rb") as rows:
            count = sum(1 for _ in rows)
        out.unlink()
        return count

    return timed_scoring(
        [
            str(bin_dir / "sentiment-predict"),
            *("--model-dir", str(model_dir), "--data", str(data), "--out", str(out)),
            "--quiet",
        ],
        count_rows,
    )


def main() -> None:
    """Run the whole benchmark and write the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb/val.jsonl.gz"))
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--seconds", type=int, default=10, help="duration of each load run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--bench-venv",
        type=Path,
        default=Path(".venv-bench"),
        help="environment with the `bench` extra (peers, prototypes); skipped if missing",
    )
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
    memory: dict[str, dict[str, float]] = {}  # server -> its RSS peak and PSS, MB
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
            starts[f"{start}_all_compiled_s"] = wait_compiled(
                log, compiling_processes(service_env, workers), running
            )
            print(
                f"service {start} start: ready in {running.ready_s:.1f} s, every XLA program "
                f"in {starts[f'{start}_all_compiled_s']:.1f} s",
                flush=True,
            )
            if start == "cold":
                with MemorySampler(running.pid) as memory_sampler:
                    points += measure_server(
                        "service",
                        running.url,
                        payloads=payloads,
                        wrk=wrk,
                        seconds=args.seconds,
                        plan=full_plan,
                    )
                starts["pod_rss_mb_max"] = memory_sampler.max_rss_mb
                starts["pod_pss_mb_after_load"] = memory_sampler.pss_mb
                memory["service"] = memory_sampler.sizes_mb
                print(
                    f"service pod memory under load: max RSS {memory_sampler.max_rss_mb:.0f} MB, "
                    f"PSS {memory_sampler.pss_mb:.0f} MB",
                    flush=True,
                )
                points += measure_protocols_and_explain(
                    running.url,
                    read_metadata(args.model_dir).name,
                    payloads=payloads,
                    wrk=wrk,
                    seconds=args.seconds,
                )
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
    bench_bin = args.bench_venv / "bin"
    if (bench_bin / "python").exists():
        # One XLA cache for every alternative (the service's flag, and TF's for the peers):
        # the same model's programs compile once, not once per server.
        shared_cache = work / f"xla-cache-alternatives-{int(time.time())}"
        alternative_points, alternative_memory, alternative_ready = measure_alternatives(
            bench_bin.resolve(),
            env={
                **service_env,
                "SENTIMENT_XLA_CACHE_DIR": str(shared_cache),
                "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={shared_cache}",
            },
            payloads=payloads,
            wrk=wrk,
            seconds=args.seconds,
            work=work,
            workers=workers,
        )
        points += alternative_points
        memory.update(alternative_memory)
        starts.update(alternative_ready)
        shutil.rmtree(shared_cache, ignore_errors=True)
    else:
        print(f"no {args.bench_venv}: peers and prototypes skipped (make bench builds it)")
    offline_data = offline_corpus(args.data, work)
    offline = measure_offline(bin_dir, args.model_dir, offline_data, work)
    print(f"offline scoring: {offline['texts_per_s']:.0f} texts/s, whole process", flush=True)
    bulk = measure_bulk(bin_dir, args.model_dir, offline_data, work)
    print(f"bulk scoring: {bulk['texts_per_s']:.0f} texts/s, whole process", flush=True)
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
            "bulk": bulk,
            "memory_mb": memory,
            "points": [asdict(p) for p in points],
        },
    )


if __name__ == "__main__":
    main()
