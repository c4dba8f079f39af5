"""Does ``/explain`` slow ``/predict``? ``python -m bench.explain_load --url http://HOST:PORT``.

Runs ``/predict`` at a fixed concurrency for a while, alone and then with ``--explainers``
clients posting ``/explain`` in a loop beside it, and prints both throughputs and latencies.
A Python client on the same machine as the server is a crude load generator: compare the two
rows with each other, not with ``make bench``'s figures (``bench.run`` can call
``predict_under_explain_load`` with its own bodies).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/imdb/val.jsonl.gz"


def _loop(
    url: str, bodies: Sequence[dict[str, Any]], stop: threading.Event, out: list[float]
) -> None:
    session = requests.Session()
    index = 0
    while not stop.is_set():
        started = time.perf_counter()
        response = session.post(url, json=bodies[index % len(bodies)], timeout=60)
        if response.status_code == 200:
            out.append(time.perf_counter() - started)
        index += 1


def predict_under_explain_load(
    base_url: str,
    predict_bodies: Sequence[dict[str, Any]],
    explain_bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int = 32,
    explainers: int = 0,
    seconds: float = 20.0,
) -> dict[str, float]:
    """Return /predict's requests/s and latency percentiles, with ``explainers`` clients beside."""
    stop = threading.Event()
    predicted: list[float] = []
    explained: list[float] = []
    threads = [
        threading.Thread(
            target=_loop, args=(f"{base_url}/predict", predict_bodies, stop, predicted)
        )
        for _ in range(concurrency)
    ] + [
        threading.Thread(
            target=_loop, args=(f"{base_url}/explain", explain_bodies, stop, explained)
        )
        for _ in range(explainers)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(predicted, n=100) if len(predicted) > 1 else [0.0] * 99
    return {
        "predict_rps": len(predicted) / seconds,
        "predict_p50_ms": cuts[49] * 1000,
        "predict_p99_ms": cuts[98] * 1000,
        "explain_rps": len(explained) / seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print /predict throughput alone and under explain load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--explainers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    with gzip.open(args.data, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for _, line in zip(range(500), handle, strict=False)]
    bodies = [{"text": text} for text in texts]
    print("| explain clients | predict req/s | predict p50 ms | predict p99 ms | explain req/s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for explainers in (0, args.explainers):
        result = predict_under_explain_load(
            args.url,
            bodies,
            bodies,
            concurrency=args.concurrency,
            explainers=explainers,
            seconds=args.seconds,
        )
        print(
            f"| {explainers} | {result['predict_rps']:.1f} | {result['predict_p50_ms']:.0f} | "
            f"{result['predict_p99_ms']:.0f} | {result['explain_rps']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
