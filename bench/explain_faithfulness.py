"""Are the explanations faithful, and what do they cost? ``python -m bench.explain_faithfulness``.

Faithfulness (deletion curve): for each sampled review, delete its k most attributed tokens
(toward the predicted label) and, separately, k tokens chosen at random; the predicted label's
probability must fall further for the top-k tokens. Cost: the time to explain one review and
one sentence, through the serving ``Predictor`` (XLA, bucketing) as ``/explain`` runs it, and
a gradient pass of as many rows as integrated gradients would need, for comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.payloads import short_sentences
from service.predictor import Predictor
from training.data import read_labelled
from training.occlusion import explain_ids

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/imdb/val.jsonl.gz"
KS = range(1, 11)
IG_STEPS = 50  # a common integrated-gradients step count (Sundararajan et al. use 20-300)


def _delete(ids: Sequence[int], positions: set[int]) -> list[int]:
    return [token for index, token in enumerate(ids) if index not in positions]


def deletion_curve(
    predictor: Predictor, texts: Sequence[str], *, seed: int = 0
) -> tuple[dict[int, tuple[float, float]], list[float], list[int]]:
    """Return {k: (mean drop top-k, mean drop random-k)}, explain seconds and token counts."""
    rng = random.Random(seed)
    empty = predictor.encode([""])[0]
    drops: dict[int, tuple[list[float], list[float]]] = {k: ([], []) for k in KS}
    seconds, lengths = [], []
    for text in texts:
        ids = predictor.encode([text])[0]
        started = time.perf_counter()
        result = explain_ids(ids, predictor.predict_encoded, empty=empty, chunk_rows=32)
        seconds.append(time.perf_counter() - started)
        lengths.append(len(ids))
        best = result.best
        order = np.argsort(-result.attributions[:, best], kind="stable")
        rows: list[list[int]] = []
        for k in KS:
            rows.append(_delete(ids, set(order[:k].tolist())) or empty)
            rows.append(_delete(ids, set(rng.sample(range(len(ids)), min(k, len(ids))))) or empty)
        outputs = predictor.predict_encoded(rows)
        probabilities = np.concatenate([1 - outputs, outputs], axis=1)[:, best]
        for index, k in enumerate(KS):
            drops[k][0].append(result.probabilities[best] - probabilities[2 * index])
            drops[k][1].append(result.probabilities[best] - probabilities[2 * index + 1])
    curve = {k: (statistics.fmean(top), statistics.fmean(rand)) for k, (top, rand) in drops.items()}
    return curve, seconds, lengths


def gradient_seconds(predictor: Predictor, length: int, rows: int = IG_STEPS) -> float:
    """Time one compiled forward+backward pass of ``rows`` x ``length`` ids (IG's cost per text).

    The gradient is taken toward the embedding table, as cheap as toward its output.
    """
    import tensorflow as tf

    model = predictor.bundle.model
    table = model.trainable_weights[0]  # the embedding table comes first

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def gradient(ids: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(ids, training=False))
        return tape.gradient(loss, table)

    ids = tf.ones((rows, length), dtype=tf.int32)
    gradient(ids)  # trace
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        gradient(ids)
        timings.append(time.perf_counter() - started)
    return min(timings)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the deletion curve and the costs as Markdown (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models/default"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    predictor = Predictor(args.model_dir, xla="auto", max_batch_size=32, warmup_batch_sizes=(1, 32))
    predictor.load()
    dataset = read_labelled(args.data)
    rng = random.Random(args.seed)
    texts = rng.sample(dataset.texts, args.sample)
    curve, seconds, lengths = deletion_curve(predictor, texts, seed=args.seed)
    print(
        f"{args.sample} val reviews (seed {args.seed}), median {statistics.median(lengths)} "
        f"tokens; mean drop of the predicted label's probability"
    )
    print("\n| k | top-k deleted | random k deleted |\n| ---: | ---: | ---: |")
    for k, (top, rand) in curve.items():
        print(f"| {k} | {top:.3f} | {rand:.3f} |")
    review = max(texts[:20], key=len)
    sentence = short_sentences(texts)[0]
    costs = {}
    for name, text in (("review", review), ("sentence", sentence)):
        ids = predictor.encode([text])[0]
        empty = predictor.encode([""])[0]
        explain_ids(ids, predictor.predict_encoded, empty=empty)  # warm the shapes
        started = time.perf_counter()
        explain_ids(ids, predictor.predict_encoded, empty=empty, chunk_rows=32)
        occlusion_s = time.perf_counter() - started
        ig_s = gradient_seconds(predictor, len(ids))
        costs[name] = {"tokens": len(ids), "occlusion_s": occlusion_s, "ig_gradient_s": ig_s}
    print("\n| text | tokens | occlusion (s) | IG, 50 steps: gradient pass (s) |")
    print("| --- | ---: | ---: | ---: |")
    for name, cost in costs.items():
        print(
            f"| {name} | {cost['tokens']} | {cost['occlusion_s']:.3f} | "
            f"{cost['ig_gradient_s']:.3f} |"
        )
    print(
        f"\nper-review explain time over the sample: median {statistics.median(seconds):.3f} s, "
        f"max {max(seconds):.3f} s (runtime {predictor.runtime_name})"
    )
    if args.json:
        args.json.write_text(json.dumps({"curve": curve, "costs": costs, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
