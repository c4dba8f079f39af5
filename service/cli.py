"""`sentiment-serve`: check the bundle, then exec gunicorn with the project's config.

The container runs this same command, and so do the integration tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service.config import DEFAULT_MODEL_DIR

GUNICORN_ARGS = ["-c", "python:service.gunicorn_conf", "service.wsgi:app()"]
MALLOC_ARENAS = 2  # glibc malloc arenas per process, unless MALLOC_ARENA_MAX is set


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; every option is also a SENTIMENT_* variable."""
    parser = argparse.ArgumentParser(
        prog="sentiment-serve",
        description="Serve a sentiment model bundle over HTTP with gunicorn. Options override "
        "the SENTIMENT_* environment variables (see README, Configuration).",
    )
    parser.add_argument("--model-dir", help=f"bundle directory (default: {DEFAULT_MODEL_DIR})")
    parser.add_argument("--host", help="bind address (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, help="bind port (default: 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default: 2)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: 16)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Validate settings and the bundle, then replace this process with gunicorn."""
    args = build_parser().parse_args(argv)
    for name in ("model_dir", "host", "port", "workers", "threads"):
        value = getattr(args, name)
        if value is not None:
            os.environ[f"SENTIMENT_{name.upper()}"] = str(value)

    from pydantic import ValidationError

    from service.config import Settings
    from training.bundle import check_bundle_files
    from training.errors import BundleError

    try:
        settings = Settings()
        check_bundle_files(settings.model_dir)
    except (ValidationError, BundleError) as exc:
        print(f"sentiment-serve: cannot start: {exc}", file=sys.stderr)
        return 2
    # gunicorn reads the settings again: hand it the model directory resolved now, through any
    # symlink, so what was checked here is what is served.
    os.environ["SENTIMENT_MODEL_DIR"] = str(settings.model_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core), and a
    # worker has many: request threads, the batcher, TensorFlow's pools. Memory freed in one
    # arena is not reused by another, so a worker's resident memory grows with its threads.
    # Two arenas cut the pod's memory under load by 50-80 MB at 2 workers (the default, 16,
    # alternated with it twice), with no throughput change beyond the noise (docs/deployment.md).
    # glibc reads this when a process starts, so it is set here, before gunicorn's master is
    # exec'd; its workers inherit it.
    os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS))
    gunicorn = [sys.executable, "-m", "gunicorn", *GUNICORN_ARGS]
    os.execv(sys.executable, gunicorn)
    return 0  # unreachable: execv does not return
