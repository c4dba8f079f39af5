"""A ``ServableModel`` whose model lives in the pod's inference process.

The worker keeps what is cheap and per request (tokenizing, its own batcher, the HTTP side)
and imports no TensorFlow; each of its batches goes over one Unix socket connection.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.prototypes import wire
from training.bundle import BundleMetadata, check_bundle_files, read_metadata
from training.preprocessing import TextPreprocessor
from training.spans import TokenSpan, encode_spans

CONNECT_TIMEOUT_S = 900.0  # the inference process compiles before it listens


class RemoteModel:
    """Encodes here; predicts in the inference process at ``socket_path``."""

    runtime_name = "remote"

    def __init__(self, model_dir: Path, socket_path: Path) -> None:
        self.model_dir = model_dir
        self.socket_path = socket_path
        self._metadata: BundleMetadata | None = None
        self._preprocessor: TextPreprocessor | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # one batch in flight per worker: its batcher's thread
        self._ready = threading.Event()

    def load(self, *, warmup: bool = True) -> None:
        """Read the tokenizer (no TensorFlow), then wait for the inference process."""
        tokenizer = check_bundle_files(self.model_dir)
        self._metadata = read_metadata(self.model_dir)
        self._preprocessor = TextPreprocessor(tokenizer, self._metadata.sequence_spec)
        ready = self.socket_path.with_suffix(".ready")
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not ready.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no inference process on {self.socket_path}")
            time.sleep(0.2)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(self.socket_path))
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def metadata(self) -> BundleMetadata:
        assert self._metadata is not None, "load() first"
        return self._metadata

    @property
    def oov_index(self) -> int | None:
        assert self._preprocessor is not None, "load() first"
        return self._preprocessor.tokenizer.oov_index

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        assert self._preprocessor is not None, "load() first"
        return self._preprocessor.encode(texts)

    def encode_spans(self, text: str) -> list[TokenSpan]:
        assert self._preprocessor is not None, "load() first"
        return encode_spans(self._preprocessor, text)

    def predict_encoded(self, encoded: Sequence[Sequence[int]]) -> np.ndarray:
        assert self._sock is not None, "load() first"
        with self._lock:
            wire.send_request(self._sock, encoded)
            return wire.recv_reply(self._sock)
