"""LitServe peer: ``python -m bench.peers.litserve_app PORT``.

Configured as LitServe's batching docs recommend for a CPU model: ``max_batch_size`` 128 with
a short ``batch_timeout``, one inference worker per core (``workers_per_device``).
"""

from __future__ import annotations

import sys
from typing import Any

import litserve as ls

from bench.peers.scoring import WORKERS, BundleScorer

MAX_BATCH_SIZE = 128
BATCH_TIMEOUT_S = 0.005  # as the service's SENTIMENT_MAX_BATCH_WAIT_MS default


class SentimentAPI(ls.LitAPI):
    """One text per request in, one prediction out; LitServe forms the batches."""

    def setup(self, device: str) -> None:
        self.scorer = BundleScorer()

    # Unannotated on purpose: LitServe builds the endpoint's body type from this annotation,
    # and without one it hands over the parsed JSON (an annotated dict was answered 422).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return str(request["text"])

    def batch(self, inputs: list[str]) -> list[str]:
        return inputs

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return self.scorer.score(texts)

    def unbatch(self, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return outputs

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


def main() -> None:
    """Serve on the port given as the only argument."""
    port = int(sys.argv[1])
    api = SentimentAPI(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=WORKERS)
    server.run(host="127.0.0.1", port=port, generate_client_file=False)


if __name__ == "__main__":
    main()
