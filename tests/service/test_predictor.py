"""The real predictor on a real (tiny) bundle: no train/serve skew, bucketing is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service import predictor as predictor_module
from service.app import create_app
from service.config import Settings
from service.decoding import Predictions
from service.predictor import Predictor
from tests.fixtures import make_reviews
from training.batches import predict_probabilities
from training.bundle import load_bundle

TEXTS = [text for text, _ in make_reviews(40, seed=5)] + ["", "<br />", "unseen words only"]


# The plain RNN bundle, one with every optional part (pre-trained embedding, n-gram branch),
# and one with the NB-SVM branch blended in.
BUNDLES = ["tiny_bundle", "tiny_hybrid_bundle", "tiny_nbsvm_bundle", "tiny_word_vectors_bundle"]


@pytest.fixture(
    scope="module",
    params=[(bundle, xla) for bundle in BUNDLES for xla in (False, True)],
    ids=lambda param: f"{param[0]}-{'xla' if param[1] else 'tf'}",
)
def predictor(request: pytest.FixtureRequest) -> Predictor:
    bundle_fixture, xla = request.param
    bundle_dir = request.getfixturevalue(bundle_fixture)
    loaded = Predictor(bundle_dir, warmup_batch_sizes=(1, 4), xla=xla, max_batch_size=8)
    loaded.load()
    return loaded


@pytest.mark.parametrize("bundle_fixture", BUNDLES)
@pytest.mark.parametrize("xla", [False, True])
def test_service_scores_equal_training_scores(
    bundle_fixture: str, xla: bool, request: pytest.FixtureRequest
) -> None:
    tiny_bundle = request.getfixturevalue(bundle_fixture)
    # Training side: the bundle's own model and preprocessing, via the evaluation path.
    bundle = load_bundle(tiny_bundle)
    expected = predict_probabilities(bundle.model, bundle.preprocessor, TEXTS)
    # Serving side: the HTTP API of an app over the same bundle directory.
    app = create_app(Settings(model_dir=tiny_bundle, xla=xla), load_in_background=False)
    response = app.test_client().post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    served = np.array(
        [
            [p["probabilities"][label] for label in bundle.metadata.labels]
            for p in response.get_json()["predictions"]
        ]
    )
    np.testing.assert_allclose(served, expected, atol=1e-6)
    app.extensions["sentiment"].stop()


def test_service_encoding_is_the_training_encoding(predictor: Predictor) -> None:
    bundle = predictor.bundle
    assert predictor.encode(TEXTS) == bundle.preprocessor.encode(TEXTS)
    np.testing.assert_array_equal(
        bundle.preprocessor.pad(predictor.encode(TEXTS)), bundle.preprocessor.transform(TEXTS)
    )


def test_text_scores_the_same_alone_and_beside_longer_texts(predictor: Predictor) -> None:
    short = "great film"
    longer = " ".join(["the plot was dull and the actors were awful"] * 3)
    alone = predictor.predict_encoded(predictor.encode([short]))
    batch = predictor.predict_encoded(predictor.encode([short, longer, longer + " again"]))
    assert (
        predictor.pad(predictor.encode([short])).shape[1]
        < predictor.pad(predictor.encode([short, longer])).shape[1]
    )
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-6)


def test_bucket_padding_equals_maxlen_padding(predictor: Predictor) -> None:
    encoded = predictor.encode(TEXTS)
    preprocessor = predictor.bundle.preprocessor
    full = np.asarray(predictor.bundle.model(preprocessor.pad(encoded), training=False))
    np.testing.assert_allclose(predictor.predict_encoded(encoded), full, atol=1e-6)
    assert predictor.bucketing
    if predictor.xla:  # 43 texts: several calls of at most 8 rows, grouped by length bucket
        assert max(predictor.batch_buckets) == 8


def test_empty_text_gets_finite_probabilities(predictor: Predictor) -> None:
    outputs = predictor.predict_encoded(predictor.encode(["", "   "]))
    probabilities = Predictions.decode(outputs, predictor.metadata.labels).probabilities
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


# -- runtime choice: a model XLA cannot compile is served, not crash-looped ------------------


def test_xla_compile_failure_falls_back_to_the_graph(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a GPU does to a cuDNN GRU under jit_compile, injected on the CPU."""
    build = predictor_module.model_function

    def build_or_fail(model: Any, *, jit: bool = False) -> Any:
        if not jit:
            return build(model)

        def failing(ids: Any) -> Any:
            raise RuntimeError("No registered 'CudnnRNNV3' OpKernel for XLA_CPU_JIT devices")

        return failing

    monkeypatch.setattr(predictor_module, "model_function", build_or_fail)
    app = create_app(Settings(model_dir=tiny_bundle, xla=True), load_in_background=False)
    runtime = app.extensions["sentiment"]
    try:
        assert runtime.predictor.runtime_name == "graph"
        assert runtime.predictor.batch_buckets == (runtime.settings.max_batch_size,)
        assert runtime.predictor.xla_failure is not None
        assert "CudnnRNNV3" in runtime.predictor.xla_failure
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        response = client.post("/predict", json={"texts": TEXTS})
        assert response.status_code == 200
        bundle = load_bundle(tiny_bundle)
        expected = predict_probabilities(bundle.model, bundle.preprocessor, TEXTS)
        served = [
            p["probabilities"][bundle.metadata.labels[1]]
            for p in response.get_json()["predictions"]
        ]
        np.testing.assert_allclose(served, expected[:, 1], atol=1e-6)
        metrics = client.get("/metrics").get_data(as_text=True)
        assert 'sentiment_model_info{name="tiny",runtime="graph",version="7"} 1.0' in metrics
    finally:
        runtime.stop()


@pytest.mark.parametrize(("gpus", "expected"), [([], "xla"), (["GPU:0"], "graph")])
def test_auto_runtime_is_xla_on_cpu_and_graph_on_gpu(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, gpus: list[str], expected: str
) -> None:
    monkeypatch.setattr(predictor_module, "gpu_present", lambda tf: bool(gpus))
    loaded = Predictor(tiny_bundle, xla="auto", warmup_batch_sizes=(1,), max_batch_size=4)
    loaded.load(warmup=False)
    assert loaded.runtime_name == expected


def test_ready_before_xla_compiles_and_scores_never_change(tiny_bundle: Path) -> None:
    """Background compilation: serve on the graph at once, move each shape to XLA when ready."""
    loaded = Predictor(
        tiny_bundle,
        xla=True,
        warmup_batch_sizes=(1, 4),
        max_batch_size=4,
        compile_in_background=True,
    )
    loaded.load()
    assert loaded.ready
    encoded = loaded.encode(TEXTS)
    early = loaded.predict_encoded(encoded[:4])  # whatever has compiled so far
    assert loaded.all_compiled.wait(120)
    assert len(loaded._compiled) == len(loaded.batch_buckets) * len(loaded.buckets)
    late = loaded.predict_encoded(encoded[:4])
    np.testing.assert_allclose(early, late, atol=1e-5)
    bundle = load_bundle(tiny_bundle)
    expected = predict_probabilities(bundle.model, bundle.preprocessor, TEXTS[:4])[:, 1:]
    np.testing.assert_allclose(late, expected, atol=1e-5)


def _resident_mb() -> float:
    status = Path("/proc/self/status").read_text()
    (line,) = [row for row in status.splitlines() if row.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_freed_heap_goes_back_to_the_system() -> None:
    # 4 kB blocks stay on glibc's heap after free (below its mmap threshold), resident.
    blocks = [bytes(4000) for _ in range(50_000)]  # ~200 MB
    keeper = bytes(4000)  # above them, so the heap's top cannot simply shrink
    del blocks
    before = _resident_mb()
    assert predictor_module.release_free_heap()
    assert before - _resident_mb() > 100
    del keeper
