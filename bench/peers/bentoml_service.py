"""BentoML peer: ``bentoml serve bench.peers.bentoml_service:Sentiment --port PORT``.

Configured as BentoML's adaptive-batching guide recommends: a batchable API (the dispatcher
merges the lists of concurrent requests) with ``max_batch_size`` 128, and one worker per core.
Requests are ``{"texts": [...]}``: a batchable API takes a list.
"""

from __future__ import annotations

from typing import Any

import bentoml

from bench.peers.scoring import WORKERS, BundleScorer

MAX_BATCH_SIZE = 128
MAX_LATENCY_MS = 1000


@bentoml.service(workers=WORKERS, traffic={"timeout": 60})
class Sentiment:
    """The bundle behind one batchable endpoint, ``POST /predict``."""

    def __init__(self) -> None:
        self.scorer = BundleScorer()

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return self.scorer.score(texts)
