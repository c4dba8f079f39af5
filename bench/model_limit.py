"""The model's own limit, in-process: no HTTP, no tokenizer. Prints one JSON object.

python -m bench.model_limit --model-dir models/default
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from service.predictor import Predictor


def _timed(call: object, ids: np.ndarray, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(ids)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def measure(
    model_dir: Path, *, batch: int = 128, repeats: int = 20, xla: bool = True
) -> dict[str, float]:
    """Return texts/s on full batches padded to maxlen, and single-text call times."""
    predictor = Predictor(
        model_dir, bucketing=False, warmup_batch_sizes=(1, batch), xla=xla, max_batch_size=batch
    )
    predictor.load()
    maxlen = predictor.metadata.maxlen
    rng = np.random.default_rng(0)
    vocabulary = predictor.metadata.vocabulary_size
    full = rng.integers(2, vocabulary, size=(batch, maxlen), dtype=np.int32)
    single_full = full[:1]
    batch_times = _timed(predictor.run, full, repeats)
    single_times = _timed(predictor.run, single_full, repeats * 5)
    return {
        "batch": batch,
        "maxlen": maxlen,
        "batch_texts_per_s": batch / statistics.median(batch_times),
        "single_ms_p50": 1000 * statistics.median(single_times),
        "single_ms_p99": 1000 * float(np.percentile(single_times, 99)),
        "threads": os.cpu_count() or 0,
        "xla": xla,
    }


def main() -> None:
    """Print the measurement as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--no-xla", dest="xla", action="store_false", help="plain TensorFlow")
    args = parser.parse_args()
    print(json.dumps(measure(args.model_dir, batch=args.batch, xla=args.xla)))


if __name__ == "__main__":
    main()
