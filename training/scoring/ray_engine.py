"""The cluster engine: the same prediction as a Ray Data pipeline (read -> map_batches -> write).

Each actor of the pool loads the bundle once and scores Arrow batches with ``predict.Scorer``:
the same preprocessing, compiled model and decoding as the local engine, so both give the same
rows. Inputs and outputs are anything Ray's readers and writers take (local or shared paths,
object storage URIs); the output is a directory of files, as Ray writes it.

Differences from the local engine, all Ray's: column types are inferred by Arrow (a CSV column
of numbers comes out as numbers); a malformed file fails the run (Ray's readers have no
per-line recovery); rejected rows (missing or non-string text) are listed without a line
number, which Ray's readers do not keep, but with the row's other columns; there is no
--resume: Ray retries failed tasks itself.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from training.errors import ScoringError, TrainingError
from training.scoring.formats import FORMATS, detect_format, is_gzip
from training.scoring.local import ScoringOptions, Summary
from training.scoring.predict import Scorer, text_problem

# Reads and writes reserve no CPU: the model actors hold the node's CPUs for as long as the
# pipeline runs, so a read task waiting for one would wait forever (a deadlock with N actors
# on N CPUs). Their real CPU use is small next to the model's.
IO_TASK_ARGS: dict[str, Any] = {"num_cpus": 0}
# Rows per actor call (map_batches' batch_size).
RAY_CHUNK_ROWS = 1024
# Ray hands a whole block to one actor, and by default a file of up to 128 MiB is read as one
# block: 5,000 reviews (6.5 MB) would all go to a single actor. Smaller blocks spread a file
# over the pool as the reader goes. (Ray's repartition would do it too, but its tasks need a
# CPU that the actors hold: a deadlock with N actors on N CPUs.)
BLOCK_BYTES = 1 << 20


def require_ray() -> Any:
    """Return the ``ray`` module, or say which extra installs it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ScoringError("--engine ray needs Ray: pip install 'sentiment-service[ray]'") from exc
    return ray


class BatchScorer:
    """The callable class of ``map_batches``: one per actor, holding one loaded bundle."""

    def __init__(
        self,
        *,
        model_dir: str,
        text_column: str,
        batch_size: int,
        threads: int,
        strict: bool,
        source: str,
        sink: Any,
    ) -> None:
        """Load the bundle and compile the model once, for every batch this actor scores."""
        started = time.perf_counter()
        _limit_tensorflow_threads(threads)
        from training.bundle import load_bundle

        self.scorer = Scorer(load_bundle(model_dir), batch_size=batch_size)
        self.scorer.probabilities(self.scorer.encode(["warm up"]))  # traces the graph now
        self.text_column = text_column
        self.strict = strict
        self.source = source
        self.sink = sink
        import ray

        ray.get(sink.started.remote(time.perf_counter() - started))

    def __call__(self, table: Any) -> Any:
        """Return the batch's scorable rows with their columns renamed and predictions added."""
        import pyarrow

        rows = table.to_pylist()
        problems = [text_problem(row, self.text_column) for row in rows]
        rejects = [
            {"file": self.source, "line": None, "reason": problem, "row": _without(row, self)}
            for row, problem in zip(rows, problems, strict=True)
            if problem is not None
        ]
        if rejects and self.strict:
            from training.errors import DataError

            raise DataError(self.source, f"{rejects[0]['reason']} in row {rejects[0]['row']}")
        keep = pyarrow.array([problem is None for problem in problems], pyarrow.bool_())
        kept = table.filter(keep) if rejects else table
        texts = kept.column(self.text_column).to_pylist()
        probabilities = self.scorer.probabilities(self.scorer.encode(texts))
        kept = _plain_columns(kept, self.text_column, texts)
        kept = kept.rename_columns([self.scorer.carried_name(n) for n in kept.column_names])
        for name, values in self.scorer.columns(probabilities).items():
            kept = kept.append_column(name, pyarrow.array(values))
        import ray

        ray.get(self.sink.record.remote(len(texts), rejects))
        return kept


def _plain_columns(table: Any, text_column: str, texts: list[str]) -> Any:
    """Return ``table`` with Ray's pickled-object columns turned back into Arrow types.

    Ray's JSON reader pickles a column it cannot convert (a text column holding a missing
    value, say); written as is, the output would hold pickles instead of values.
    """
    import pyarrow

    for position, name in enumerate(table.column_names):
        column = table.column(name)
        if not isinstance(column.type, pyarrow.ExtensionType):
            continue
        values = texts if name == text_column else column.to_pylist()
        try:
            plain = pyarrow.array(values)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError):
            plain = pyarrow.array([None if v is None else repr(v) for v in values])
        table = table.set_column(position, name, plain)
    return table


def _without(row: dict[str, Any], scorer: BatchScorer) -> dict[str, Any]:
    """Return a rejected row's other columns (JSON-safe), to find it by its ids."""
    return {
        k: v if isinstance(v, int | float | str | None) else repr(v)
        for k, v in row.items()
        if k != scorer.text_column
    }


def _limit_tensorflow_threads(threads: int) -> None:
    # Every actor's TensorFlow would otherwise start a thread per core of the node: N actors
    # on N cores would run N^2 threads fighting over them.
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _sink_class(ray: Any) -> Any:
    @ray.remote(num_cpus=0)
    class RejectSink:
        """Collects counts, rejects and actor start times from the pool (one small actor)."""

        def __init__(self) -> None:
            self.scored = 0
            self.rejects: list[dict[str, Any]] = []
            self.start_seconds: list[float] = []

        def started(self, seconds: float) -> None:
            self.start_seconds.append(seconds)

        def record(self, scored: int, rejects: list[dict[str, Any]]) -> None:
            self.scored += scored
            self.rejects.extend(rejects)

        def totals(self) -> tuple[int, list[dict[str, Any]], list[float]]:
            return self.scored, self.rejects, self.start_seconds

    return RejectSink


def score_with_ray(
    model_dir: Path,
    options: ScoringOptions,
    *,
    address: str | None = None,
    actors: int = 2,
    cpus_per_actor: int = 1,
    local_cpus: int | None = None,
) -> Summary:
    """Score ``options.data`` into the directory ``options.out`` on Ray; return the summary."""
    if options.resume:
        raise ScoringError("--resume is for the local engine; Ray retries failed tasks itself")
    ray = require_ray()
    started = time.perf_counter()
    in_kind = detect_format(options.data, options.input_format)
    out_kind = _output_kind(options, in_kind)
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=local_cpus if address is None else None,
            include_dashboard=False,
            configure_logging=False,
        )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # output files follow the input's order
    context.enable_progress_bars = False
    context.target_max_block_size = BLOCK_BYTES
    sink = _sink_class(ray).remote()
    dataset = _read(ray, options.data, in_kind).map_batches(
        BatchScorer,
        fn_constructor_kwargs={
            "model_dir": str(model_dir),
            "text_column": options.text_column,
            "batch_size": options.batch_size,
            "threads": cpus_per_actor,
            "strict": options.strict,
            "source": str(options.data),
            "sink": sink,
        },
        batch_size=options.chunk_rows,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
    )
    target = _staging(options.out)
    try:
        _write(dataset, target, out_kind, compress=is_gzip(options.out))
    except Exception as exc:  # Ray wraps the actor's error; report ours as ours
        raise _cause(exc) from exc
    if target != str(options.out):
        shutil.rmtree(options.out, ignore_errors=True)
        os.replace(target, options.out)
    scored, rejects, start_seconds = ray.get(sink.totals.remote())
    summary = Summary(engine="ray", output=str(options.out), scored=scored, rejected=len(rejects))
    summary.rows = scored + len(rejects)
    if rejects:
        summary.rejects = str(_write_rejects(options, rejects))
    summary.seconds = round(time.perf_counter() - started, 3)
    summary.texts_per_s = round(scored / max(summary.seconds, 1e-9), 1)
    summary.extra = {"actors": actors, "actor_start_s": [round(s, 2) for s in start_seconds]}
    return summary


def _output_kind(options: ScoringOptions, in_kind: str) -> str:
    if options.output_format is not None:
        return detect_format(options.out, options.output_format)
    try:
        return detect_format(options.out)
    except ScoringError:
        return in_kind  # a plain directory name: write what was read


def _read(ray: Any, path: Path, kind: str) -> Any:
    location = str(path)
    if kind == "parquet":
        return ray.data.read_parquet(location, **IO_TASK_ARGS)
    if kind == "jsonl":
        return ray.data.read_json(location, lines=True, **IO_TASK_ARGS)
    import pyarrow.csv

    delimiter = "\t" if kind == "tsv" else ","
    return ray.data.read_csv(
        location,
        parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        file_extensions=None,
        **IO_TASK_ARGS,
    )


def _write(dataset: Any, target: str, kind: str, *, compress: bool) -> None:
    stream_args = {"compression": "gzip"} if compress else None
    if kind == "parquet":
        dataset.write_parquet(target, ray_remote_args=IO_TASK_ARGS)
    elif kind == "jsonl":
        # 15 digits keep every float32 probability exact (pandas' default keeps 10).
        dataset.write_json(
            target,
            arrow_open_stream_args=stream_args,
            ray_remote_args=IO_TASK_ARGS,
            double_precision=15,
        )
    else:
        import pyarrow.csv

        delimiter = "\t" if kind == "tsv" else ","
        dataset.write_csv(
            target,
            arrow_open_stream_args=stream_args,
            ray_remote_args=IO_TASK_ARGS,
            arrow_csv_args_fn=lambda: {
                "write_options": pyarrow.csv.WriteOptions(delimiter=delimiter)
            },
        )


def _staging(out: Path) -> str:
    """Return where Ray writes: beside a local ``out`` (renamed at the end), else ``out``."""
    if "://" in str(out):
        return str(out)  # object storage has no rename; its writes are per file anyway
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return str(staging)


def _write_rejects(options: ScoringOptions, rejects: list[dict[str, Any]]) -> Path:
    import orjson

    path = options.rejects_path
    path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rejects))
    return path


def _cause(exc: BaseException) -> BaseException:
    """Return the TrainingError behind Ray's wrapping, or a ScoringError naming the failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TrainingError):
            return seen
        seen = seen.__cause__ or getattr(seen, "cause", None)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500]
    return ScoringError(f"the Ray pipeline failed: {first}")


__all__ = ["FORMATS", "BatchScorer", "require_ray", "score_with_ray"]
