"""``POST /explain``, the KServe ``:explain`` verb, the page, and the explain queue (fakes only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
from flask.testing import FlaskClient

from service.errors import Overloaded
from service.explain_queue import ExplainQueue
from service.routes.explain import PAGE_CSP
from tests.fixtures import FakePredictor
from tests.service.conftest import AppFactory
from training.occlusion import explain_ids, variants


def _explain(client: FlaskClient, text: str) -> dict:
    response = client.post("/explain", json={"text": text})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _score(client: FlaskClient, text: str, label: str) -> float:
    body = client.post("/predict", json={"text": text}).get_json()
    return body["predictions"][0]["probabilities"][label]


def test_explain_returns_prediction_spans_and_method(client: FlaskClient) -> None:
    text = "The  film was GOOD"
    body = _explain(client, text)
    assert body["model"] == {"name": "fake", "version": "3"}
    assert body["method"]["name"] == "occlusion"
    (result,) = body["explanations"]
    assert result["label"] == "negative"
    assert result["score"] == pytest.approx(0.75)
    assert [text[t["start"] : t["end"]] for t in result["tokens"]] == ["The", "film", "was", "GOOD"]
    assert "attributions" not in result["tokens"][0]  # binary: toward the predicted label only


@pytest.mark.parametrize(
    "text", ["the film was good", "good great bad", "awful", "good the good", "bad good"]
)
def test_deleting_a_token_moves_the_score_by_exactly_its_attribution(
    client: FlaskClient, text: str
) -> None:
    result = _explain(client, text)["explanations"][0]
    words = text.split()
    for index, token in enumerate(result["tokens"]):
        without = " ".join(words[:index] + words[index + 1 :])
        expected = result["score"] - _score(client, without, result["label"])
        assert token["attribution"] == pytest.approx(expected, abs=1e-6)


def test_identical_tokens_get_identical_attributions(client: FlaskClient) -> None:
    tokens = _explain(client, "good good good good")["explanations"][0]["tokens"]
    assert len({round(t["attribution"], 9) for t in tokens}) == 1


def test_sentiment_words_push_toward_their_label(client: FlaskClient) -> None:
    tokens = _explain(client, "great film was awful the")["explanations"][0]["tokens"]
    by_token = {t["token"]: t["attribution"] for t in tokens}
    assert by_token["great"] < 0 < by_token["film"]  # predicted negative: "great" argues against


def test_a_text_without_tokens_has_no_attributions(client: FlaskClient) -> None:
    assert _explain(client, "   ")["explanations"][0]["tokens"] == []


def test_texts_keep_their_order(client: FlaskClient) -> None:
    response = client.post("/explain", json={"texts": ["good", "bad film"]})
    labels = [e["label"] for e in response.get_json()["explanations"]]
    assert labels == ["positive", "negative"]


def test_explain_has_its_own_lower_text_limit(make_app: AppFactory) -> None:
    client = make_app(explain_max_texts_per_request=2).test_client()
    assert client.post("/predict", json={"texts": ["a", "b", "c"]}).status_code == 200
    response = client.post("/explain", json={"texts": ["a", "b", "c"]})
    assert response.status_code == 422
    assert "limit of 2" in response.get_json()["error"]["details"][0]["msg"]


@pytest.mark.parametrize("body", [{}, {"text": 3}, {"text": "a", "texts": ["b"]}, {"texts": []}])
def test_explain_validates_like_predict(client: FlaskClient, body: dict) -> None:
    assert client.post("/explain", json=body).status_code == 422


def test_kserve_v1_explain(client: FlaskClient) -> None:
    response = client.post("/v1/models/fake:explain", json={"instances": ["good film"]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["method"]["name"] == "occlusion"
    assert [t["token"] for t in body["explanations"][0]["tokens"]] == ["good", "film"]
    versioned = client.post("/v1/models/fake/versions/3:explain", json={"instances": ["good"]})
    assert versioned.status_code == 200
    missing = client.post("/v1/models/other:explain", json={"instances": ["good"]})
    assert missing.status_code == 404
    assert "error" in missing.get_json()
    assert isinstance(missing.get_json()["error"], str)


def test_explain_latency_has_its_own_histogram(client: FlaskClient) -> None:
    _explain(client, "good film")
    text = client.get("/metrics").get_data(as_text=True)
    assert "sentiment_explain_duration_seconds_count 1.0" in text
    assert "sentiment_explained_tokens_sum 2.0" in text


def test_the_page_and_its_assets(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    html = page.get_data(as_text=True)
    assert "/static/explain.js" in html
    assert "http" not in html.replace("http-equiv", "")
    for asset, mimetype in (("explain.js", "text/javascript"), ("explain.css", "text/css")):
        response = client.get(f"/static/{asset}")
        response.close()  # a static file is streamed from an open file
        assert response.status_code == 200
        assert response.mimetype == mimetype
    # Only the page has the relaxed policy.
    assert "default-src 'none'" in client.get("/healthz").headers["Content-Security-Policy"]
    assert (
        "script-src"
        not in client.post("/predict", json={"text": "a"}).headers["Content-Security-Policy"]
    )


def test_page_and_explain_sit_behind_auth(make_app: AppFactory) -> None:
    client = make_app(auth_tokens="sekret").test_client()
    for method, path in (("GET", "/"), ("GET", "/static/explain.js"), ("POST", "/explain")):
        response = client.open(path, method=method, json={"text": "a"})
        response.close()
        assert response.status_code == 401
    headers = {"Authorization": "Bearer sekret"}
    assert client.get("/", headers=headers).status_code == 200
    assert client.post("/explain", json={"text": "good"}, headers=headers).status_code == 200


# -- the explain queue -----------------------------------------------------------------------


def _model(encoded: Sequence[Sequence[int]]) -> np.ndarray:
    return FakePredictor().predict_encoded(encoded)


def test_offline_and_queued_explanations_agree() -> None:
    queue = ExplainQueue(_model, predict_busy=lambda: False, chunk_rows=2)
    queue.start()
    try:
        ids = [2, 6, 4, 3, 7]
        (queued,) = queue.submit([ids], [1]).future.result(timeout=5)
    finally:
        queue.stop(5)
    offline = explain_ids(ids, _model, empty=[1], chunk_rows=3)
    np.testing.assert_allclose(queued.attributions, offline.attributions)
    assert variants([5], empty=[1]) == [[5], [1]]  # the only token gone: an empty text


def test_a_full_queue_refuses_with_retry_after() -> None:
    gate = threading.Event()
    queue = ExplainQueue(
        FakePredictor(gate=gate).predict_encoded,
        predict_busy=lambda: False,
        max_queue_texts=1,
    )
    queue.start()
    try:
        first = queue.submit([[2, 3]])
        with pytest.raises(Overloaded) as refused:
            queue.submit([[2]])
        assert refused.value.status == 503
        assert refused.value.headers["Retry-After"] == "1"
        gate.set()
        assert len(first.future.result(timeout=5)) == 1
    finally:
        gate.set()
        queue.stop(5)


def test_queued_predict_work_goes_first() -> None:
    busy = threading.Event()
    busy.set()
    calls: list[float] = []

    def model(encoded: Sequence[Sequence[int]]) -> np.ndarray:
        calls.append(time.monotonic())
        return _model(encoded)

    queue = ExplainQueue(model, predict_busy=busy.is_set, max_yield_s=5.0)
    queue.start()
    try:
        started = time.monotonic()
        job = queue.submit([[2, 3]])
        time.sleep(0.2)
        assert calls == []  # waiting while predict work is queued
        busy.clear()
        job.future.result(timeout=5)
        assert calls[0] - started >= 0.2
    finally:
        queue.stop(5)


def test_a_caller_that_gave_up_has_the_rest_skipped() -> None:
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    queue = ExplainQueue(fake.predict_encoded, predict_busy=lambda: False, chunk_rows=1)
    queue.start()
    try:
        job = queue.submit([[2, 3, 4, 5, 6, 7]])
        assert fake.entered.wait(5)
        job.abandon()
        gate.set()
        deadline = time.monotonic() + 5
        while queue.queued_texts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.queued_texts == 0
        assert len(fake.batch_sizes) < 7  # not every variant ran
    finally:
        gate.set()
        queue.stop(5)
