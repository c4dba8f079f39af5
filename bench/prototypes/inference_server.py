"""The one model process of a pod: ``python -m bench.prototypes.inference_server SOCKET``.

Loads the bundle once, then serves every HTTP worker's connection on a thread of its own; the
service's ``DynamicBatcher`` merges the batches that arrive together into one model call.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import sys
from pathlib import Path

from bench.prototypes import wire
from service.batching import DynamicBatcher
from service.config import Settings
from service.predictor import Predictor

log = logging.getLogger(__name__)


def serve(socket_path: Path, settings: Settings) -> None:
    """Load the model, then answer batches on ``socket_path`` until killed."""
    predictor = Predictor(
        settings.model_dir,
        bucketing=settings.bucketing,
        intra_op_threads=settings.tf_intra_op_threads or (os.cpu_count() or 1),
        xla=settings.xla,
        max_batch_size=settings.max_batch_size,
        compile_in_background=settings.compile_in_background,
    )
    predictor.load(warmup=settings.warmup)
    batcher = DynamicBatcher(
        predictor.predict_encoded,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_batch_wait_ms / 1000,
        max_queue_items=settings.max_queue_texts * max(1, settings.workers),
    )
    batcher.start()

    class Connection(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            while True:
                try:
                    encoded = wire.recv_request(sock)
                except EOFError:
                    return
                try:
                    outputs = batcher.submit(encoded).result()
                except Exception as exc:  # the worker fails that batch only
                    wire.send_failure(sock, str(exc))
                    continue
                wire.send_reply(sock, outputs)

    socket_path.unlink(missing_ok=True)
    with socketserver.ThreadingUnixStreamServer(str(socket_path), Connection) as server:
        server.daemon_threads = True
        # Workers wait for this file's rename, so they never connect to a half-loaded model.
        ready = socket_path.with_suffix(".ready")
        ready.write_text(str(os.getpid()))
        log.warning("inference process ready on %s", socket_path)
        server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(Path(sys.argv[1]), Settings())
