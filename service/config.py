"""Service settings: one typed object, read from ``SENTIMENT_*`` environment variables."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# models/default beside the packages: where the repository and the image keep the shipped bundle.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"
# What a bearer token may contain: visible ASCII, no spaces or control characters.
_TOKEN = re.compile(r"[\x21-\x7e]+")


class Settings(BaseSettings):
    """Every knob of the service; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMENT_",
        extra="ignore",
        frozen=True,
        # Errors name the setting and the rule, never the value: it may be a bearer token.
        hide_input_in_errors=True,
    )

    model_dir: Path = DEFAULT_MODEL_DIR
    """Model bundle directory (model.keras, tokenizer.json, metadata.json)."""

    host: str = "0.0.0.0"  # a container must listen on all interfaces
    """Address gunicorn binds."""

    port: int = Field(8000, ge=1, le=65535)
    """Port gunicorn binds."""

    workers: int = Field(2, ge=1, le=64)
    """gunicorn worker processes that answer HTTP (plus the model process, in ``process``
    inference); with ``inference=worker`` each loads its own copy of the model."""

    inference: Literal["worker", "process"] = "process"
    """Where the model runs: ``process`` (one model process per pod that every HTTP worker
    sends its batches to, the HTTP workers on gevent without TensorFlow) or ``worker`` (a copy
    in each gthread worker: more memory per worker, and a dead worker costs only its share).
    The default measured ahead at most bench points, with less memory (docs/performance.md)."""

    inference_socket: Path | None = None
    """Unix socket between the workers and the model process (default: a private temp dir)."""

    threads: int = Field(16, ge=1, le=512)
    """Request threads per worker: the concurrency the batcher can coalesce (``worker`` mode;
    gevent's workers in ``process`` mode serve every connection concurrently)."""

    max_batch_size: int = Field(128, ge=1, le=4096)
    """Most texts in one model call."""

    max_batch_wait_ms: float = Field(2.0, ge=0, le=1000)
    """How long a batch waits for requests known to be arriving; never waits when none are."""

    max_queue_texts: int = Field(2048, ge=1)
    """Texts waiting for the model per worker; past it requests get 503 + Retry-After."""

    request_timeout_s: float = Field(30.0, gt=0)
    """How long a request waits for its predictions before a 503."""

    max_texts_per_request: int = Field(256, ge=1)
    """Texts in one /predict request; more is a 422."""

    explain_max_texts_per_request: int = Field(8, ge=1)
    """Texts in one /explain request (each costs one model row per token); more is a 422."""

    explain_max_queue_texts: int = Field(16, ge=1)
    """Texts waiting to be explained per worker; past it /explain gets 503 + Retry-After."""

    explain_chunk_rows: int = Field(8, ge=1, le=4096)
    """Rows per explain model call: between calls, /predict work goes first."""

    explain_max_yield_ms: float = Field(500.0, ge=0, le=60_000)
    """Longest an explain call waits for /predict to go idle before it runs anyway (so
    explanations still finish, slowly, under a /predict flood)."""

    max_text_chars: int = Field(20_000, ge=1)
    """Characters in one text; longer is a 422 (IMDB's longest review is ~14k)."""

    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """Request body size; larger is a 413, checked before the body is read."""

    tf_intra_op_threads: int = Field(0, ge=0)
    """TensorFlow threads inside one op; 0 = CPUs / workers, so workers x threads fit the CPUs."""

    tf_inter_op_threads: int = Field(1, ge=0)
    """TensorFlow ops run in parallel; 1 suits an RNN, whose steps are sequential anyway."""

    bucketing: bool = True
    """Pad each batch only to its length bucket (exact for post-padded masked models)."""

    xla: bool | Literal["auto"] = "auto"
    """Compile the model with XLA: ``auto`` (on CPU, where it is 2-6x faster; not on a GPU,
    where cuDNN runs the RNN and has no XLA kernel), ``true`` or ``false``. A model XLA cannot
    compile is served on the plain graph, with a log line and ``runtime`` on model_info."""

    compile_in_background: bool = True
    """Turn ready once the plain graph is warm and compile the XLA shapes in the background,
    each one serving as soon as it is compiled (cold start in seconds, not minutes); false:
    compile every shape before /readyz turns 200."""

    xla_cache_dir: Path | None = None
    """Where compiled XLA programs are kept, so restarts skip compiling (default: a temp dir)."""

    warmup: bool = True
    """Run every bucket shape once before /readyz turns 200."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the JSON logs."""

    log_texts: bool = False
    """Log request texts (off: texts are private by default)."""

    graceful_timeout_s: int = Field(25, ge=1)
    """Seconds after SIGTERM before the master kills what is left (drain period included)."""

    drain_s: float = Field(2.0, ge=0)
    """Seconds a worker keeps accepting after SIGTERM (readiness already 503) before it takes
    the listen backlog and closes its listener; every request sent until then is answered."""

    metrics_dir: Path | None = None
    """Prometheus multiprocess directory; set by the gunicorn config when running there."""

    auth_tokens: SecretStr | None = None
    """Comma-separated bearer tokens; when set, prediction routes need one (probes never do)."""

    auth_tokens_file: Path | None = None
    """File of bearer tokens, one per line (blank and ``#`` lines skipped); also turns auth on."""

    _bearer_tokens: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("model_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _drain_fits_the_grace(self) -> Settings:
        # The master kills workers graceful_timeout_s after SIGTERM: draining must end before,
        # with time left to answer what was accepted.
        if self.drain_s + 1 > self.graceful_timeout_s:
            raise ValueError("drain_s must be at least 1 s shorter than graceful_timeout_s")
        return self

    @model_validator(mode="after")
    def _fits_the_queue(self) -> Settings:
        if self.max_queue_texts < self.max_texts_per_request:
            raise ValueError("max_queue_texts must be >= max_texts_per_request")
        return self

    @model_validator(mode="after")
    def _load_tokens(self) -> Settings:
        # Fail closed: auth asked for (either setting present) but no usable token is an error,
        # never a silently open server (an empty Kubernetes secret, a wrong file path).
        tokens: list[str] = []
        if self.auth_tokens is not None:
            tokens += [t.strip() for t in self.auth_tokens.get_secret_value().split(",")]
        if self.auth_tokens_file is not None:
            try:
                lines = self.auth_tokens_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read SENTIMENT_AUTH_TOKENS_FILE: {exc}") from exc
            tokens += [line.strip() for line in lines if not line.strip().startswith("#")]
        tokens = [token for token in tokens if token]
        if (self.auth_tokens is not None or self.auth_tokens_file is not None) and not tokens:
            raise ValueError(
                "authentication is on (SENTIMENT_AUTH_TOKENS or SENTIMENT_AUTH_TOKENS_FILE is "
                "set) but no bearer token is configured"
            )
        if any(not _TOKEN.fullmatch(token) for token in tokens):
            # An HTTP header could never carry such a token: it would lock everyone out.
            raise ValueError("bearer tokens must be printable ASCII without spaces")
        self._bearer_tokens = tuple(dict.fromkeys(tokens))
        return self

    @property
    def bearer_tokens(self) -> tuple[str, ...]:
        """Return the accepted bearer tokens; empty when authentication is off."""
        return self._bearer_tokens

    def intra_op_threads(self) -> int:
        """Return the TensorFlow intra-op pool size of one model copy: its share of the CPUs.

        The same share in both modes: a model process given every CPU spun its op threads
        against the HTTP workers' (2 cores: IMDB c=32 286 against 417 texts/s with one).
        """
        if self.tf_intra_op_threads:
            return self.tf_intra_op_threads
        return max(1, available_cpus() // self.workers)

    def inference_socket_path(self) -> Path:
        """Return the model process's socket (one per port, so two servers never share one)."""
        if self.inference_socket is not None:
            return self.inference_socket
        return Path(tempfile.gettempdir()) / f"sentiment-inference-{self.port}" / "model.sock"


def available_cpus() -> int:
    """Return the CPUs this process may use, honouring a container's cgroup CPU quota.

    TensorFlow sizes its pools from the host's cores and ignores the quota (tensorflow#17206).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return min(cpus, max(1, int(quota))) if quota else cpus


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Return the CPU quota in CPUs from cgroup v2 (cpu.max) or v1 (cfs_quota_us), if any."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for base in (root / "cpu", root / "cpu,cpuacct"):
        try:
            v1_quota = int((base / "cpu.cfs_quota_us").read_text())
            v1_period = int((base / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return v1_quota / v1_period if v1_quota > 0 else None
    return None
