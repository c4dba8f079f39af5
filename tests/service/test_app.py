"""Every route and every error of the app, through the Flask test client, over a fake model."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import string
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from service.app import METRIC_METHODS, OTHER_METHOD, UNMATCHED_ROUTE, create_app, route_label
from service.batching import DynamicBatcher
from service.config import Settings
from service.errors import ServiceError
from service.explain_queue import ExplainQueue
from service.metrics import Metrics
from service.runtime import Runtime
from service.state import EXTENSION
from service.wsgi import WORKER_BOOT_ERROR, finish
from tests.fixtures import FakePredictor, fake_score, wait_until

LABELS = ["negative", "positive"]
TF_PREDICT = "/v1/models/fake:predict"
JSON = "application/json"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")

AppFactory = Callable[..., Flask]  # the ``make_app`` fixture


def post_raw(
    client: FlaskClient, path: str, body: bytes, content_type: str | None = JSON
) -> TestResponse:
    """POST raw bytes (the test client's ``json=`` cannot send invalid or null bodies)."""
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return client.post(path, data=body, headers=headers)


def error_of(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert the service's error shape and return its ``error`` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def tf_error_of(response: TestResponse, status: int) -> str:
    """Assert TF Serving's error shape, ``{"error": "<str>"}``, and return the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    assert body["error"]
    message: str = body["error"]
    return message


def locs(error: dict[str, Any]) -> list[str]:
    """Return the field paths of a validation error."""
    return [detail["loc"] for detail in error["details"]]


# -- POST /predict --------------------------------------------------------------------------


def test_predict_one_text(client: FlaskClient) -> None:
    response = client.post("/predict", json={"text": "good good film"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == {"name": "fake", "version": "3"}
    [prediction] = body["predictions"]
    assert set(prediction) == {"label", "score", "probabilities"}
    assert prediction["label"] == "positive"
    assert prediction["probabilities"]["positive"] == pytest.approx(2 / 3)
    assert prediction["score"] == prediction["probabilities"]["positive"]


def test_predict_texts_in_order(client: FlaskClient) -> None:
    texts = ["bad bad bad", "good", "good bad", "the film was great great", "awful film"]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    body = response.get_json()
    assert body["model"] == {"name": "fake", "version": "3"}
    predictions = body["predictions"]
    assert len(predictions) == len(texts)
    for text, prediction in zip(texts, predictions, strict=True):
        probabilities = prediction["probabilities"]
        assert list(probabilities) == LABELS
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert probabilities["positive"] == pytest.approx(fake_score(text))
        assert prediction["label"] == max(probabilities, key=probabilities.__getitem__)
        assert prediction["score"] == probabilities[prediction["label"]]
        assert 0.0 <= prediction["score"] <= 1.0
    positive = [p["probabilities"]["positive"] for p in predictions]
    assert positive == pytest.approx([0.0, 1.0, 0.5, 0.4, 0.0])  # in the order sent
    assert [p["label"] for p in predictions] == [
        "negative",
        "positive",
        "negative",  # a tie goes to the first label
        "negative",
        "negative",
    ]


def test_predict_accepts_json_with_charset(client: FlaskClient) -> None:
    response = post_raw(
        client, "/predict", b'{"text": "great"}', content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200
    assert response.get_json()["predictions"][0]["label"] == "positive"


@pytest.mark.parametrize(
    "texts",
    [
        [""],
        ["", " ", "\t\n"],
        ["nul\x00inside", "\x01\x02\x1f\x7f", "line\u2028sep", "bell\x07 good"],
        ["emoji 😀 good", "\ud7ff\ue000", "right-to-left \u202e text"],
    ],
)
def test_predict_odd_but_valid_texts(client: FlaskClient, texts: list[str]) -> None:
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200, response.get_data(as_text=True)
    predictions = response.get_json()["predictions"]
    assert len(predictions) == len(texts)
    for prediction in predictions:
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def test_predict_empty_text(client: FlaskClient) -> None:
    response = client.post("/predict", json={"text": ""})
    assert response.status_code == 200
    [prediction] = response.get_json()["predictions"]
    assert prediction["probabilities"] == {"negative": 0.5, "positive": 0.5}


def test_predict_duplicate_keys_take_the_last_value(client: FlaskClient) -> None:
    response = post_raw(client, "/predict", b'{"text": "bad bad", "text": "good good"}')
    assert response.status_code == 200
    [prediction] = response.get_json()["predictions"]
    assert prediction["label"] == "positive"
    # The last value is the one validated, too.
    response = post_raw(client, "/predict", b'{"text": "good", "text": 3}')
    assert locs(error_of(response, 422, "validation_error")) == ["text"]


def test_predict_at_the_limits(client: FlaskClient) -> None:
    response = client.post("/predict", json={"texts": ["x" * 50] * 5})
    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == 5


# -- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"text": ', id="truncated"),
        pytest.param(b"{text: 'a'}", id="not-json"),
        pytest.param(b'{"text": "a",}', id="trailing-comma"),
        pytest.param(b'{"text": NaN}', id="nan"),
        pytest.param(b'{"texts": [1e999]}', id="huge-float"),
        pytest.param(b'{"texts": [-1e400]}', id="huge-negative-float"),
        pytest.param(b'{"text": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b'{"text": "\xed\xa0\x80"}', id="utf8-surrogate"),
        pytest.param(b"\xef\xbb\xbf" + b'{"text": "a"', id="bom-truncated"),
        pytest.param(b"[" * 100_000, id="deep-list"),
        pytest.param(b'{"a":' * 100_000, id="deep-object"),
        pytest.param(b'{"text": "a"} {"text": "b"}', id="two-documents"),
    ],
)
def test_malformed_json_is_400(client: FlaskClient, body: bytes) -> None:
    error = error_of(post_raw(client, "/predict", body[:4000]), 400, "malformed_json")
    assert "not valid JSON" in error["message"]


def test_deep_nesting_within_the_body_limit_is_400(make_app: AppFactory) -> None:
    client = make_app(max_body_bytes=1_000_000).test_client()
    for body in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000):
        error_of(post_raw(client, "/predict", body), 400, "malformed_json")
    assert client.post("/predict", json={"text": "good"}).status_code == 200


def test_huge_integer_is_not_a_text(client: FlaskClient) -> None:
    response = post_raw(client, "/predict", b'{"texts": [123456789012345678901234567890]}')
    assert locs(error_of(response, 422, "validation_error")) == ["texts.0"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("text/plain", b'{"text": "a"}', id="text-plain"),
        pytest.param(None, b'{"text": "a"}', id="none"),
        pytest.param("application/x-www-form-urlencoded", b"text=a", id="form"),
        pytest.param("multipart/form-data; boundary=x", b"--x--", id="multipart"),
        pytest.param("application/xml", b"<text>a</text>", id="xml"),
    ],
)
def test_wrong_content_type_is_415(
    client: FlaskClient, content_type: str | None, body: bytes
) -> None:
    response = post_raw(client, "/predict", body, content_type=content_type)
    error = error_of(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]


def test_form_data_is_415(client: FlaskClient) -> None:
    error_of(client.post("/predict", data={"text": "a"}), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    body = json.dumps({"text": "x" * 5000}).encode()
    error = error_of(post_raw(client, "/predict", body), 413, "payload_too_large")
    assert "4096" in error["message"]


def test_chunked_body_over_the_limit_is_413(client: FlaskClient) -> None:
    # A chunked request has no Content-Length: the limit must hold while reading.
    body = json.dumps({"texts": ["x" * 40] * 200}).encode()
    error_of(post_chunked(client, "/predict", body), 413, "payload_too_large")


def post_chunked(client: FlaskClient, path: str, body: bytes) -> TestResponse:
    """POST ``body`` without Content-Length, as a server that de-chunks it presents it."""
    response = client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Content-Type": JSON, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    return response


def test_chunked_body_within_the_limit_is_read(client: FlaskClient) -> None:
    response = post_chunked(client, "/predict", b'{"texts": ["good", "bad"]}')
    assert response.status_code == 200
    assert [p["label"] for p in response.get_json()["predictions"]] == ["positive", "negative"]


def test_chunked_body_is_not_truncated_at_the_limit(client: FlaskClient) -> None:
    # Valid JSON followed by blanks: cut at the limit it would still parse, and be served.
    body = b'{"text": "good"}'
    exactly = body + b" " * (4096 - len(body))
    assert post_chunked(client, "/predict", exactly).status_code == 200
    error_of(post_chunked(client, "/predict", exactly + b" "), 413, "payload_too_large")
    error_of(post_chunked(client, "/predict", body + b" " * 10_000), 413, "payload_too_large")
    tf_error_of(post_chunked(client, TF_PREDICT, b'{"instances": ["a"]}' + b" " * 5000), 413)


# -- schema and limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_locs"),
    [
        pytest.param({"texts": ["ok", 3]}, ["texts.1"], id="number-in-texts"),
        pytest.param({"texts": ["ok", None]}, ["texts.1"], id="null-in-texts"),
        pytest.param({"texts": ["ok", ["nested"]]}, ["texts.1"], id="list-in-texts"),
        pytest.param({"text": 3}, ["text"], id="number-text"),
        pytest.param({"text": True}, ["text"], id="bool-text"),
        pytest.param({"text": {"a": "b"}}, ["text"], id="object-text"),
        pytest.param({"text": "ok", "extra": 1}, ["extra"], id="extra-key"),
        pytest.param({"text": "a", "texts": ["b"]}, ["body"], id="text-and-texts"),
        pytest.param({}, ["body"], id="neither"),
        pytest.param({"text": None}, ["body"], id="null-text"),
        pytest.param({"texts": []}, ["texts"], id="empty-texts"),
        pytest.param({"texts": "str"}, ["texts"], id="texts-string"),
        pytest.param(["a", "b"], ["body"], id="top-level-list"),
        pytest.param(3, ["body"], id="top-level-number"),
        pytest.param(None, ["body"], id="top-level-null"),
        pytest.param("good film", ["body"], id="top-level-string"),
        pytest.param(True, ["body"], id="top-level-bool"),
    ],
)
def test_schema_errors_are_422_with_field_paths(
    client: FlaskClient, body: Any, expected_locs: list[str]
) -> None:
    response = post_raw(client, "/predict", json.dumps(body).encode())
    error = error_of(response, 422, "validation_error")
    assert locs(error) == expected_locs
    for detail in error["details"]:
        assert set(detail) == {"loc", "msg", "type"}
        assert isinstance(detail["msg"], str)
        assert detail["msg"]


@pytest.mark.parametrize(
    ("body", "loc", "fragment"),
    [
        pytest.param({"texts": ["a"] * 6}, "texts", "6 texts exceed the limit of 5", id="too-many"),
        pytest.param(
            {"text": "x" * 51}, "text", "51 characters, over the limit of 50", id="long-text"
        ),
        pytest.param(
            {"texts": ["ok", "y" * 51]}, "texts", "text 1 has 51 characters", id="long-item"
        ),
    ],
)
def test_limits_are_422_at_the_field(
    client: FlaskClient, body: Any, loc: str, fragment: str
) -> None:
    error = error_of(client.post("/predict", json=body), 422, "validation_error")
    assert [detail["loc"] for detail in error["details"]] == [loc]
    assert fragment in error["details"][0]["msg"]


def test_limit_counts_characters_not_bytes(client: FlaskClient) -> None:
    # 50 characters, 200 bytes of UTF-8.
    assert client.post("/predict", json={"text": "😀" * 50}).status_code == 200


# -- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/predict/"),
        ("POST", "/v3/models/fake:predict"),  # /v2/ is the V2 protocol's (test_v2.py)
        ("GET", "/v1/models"),
    ],
)
def test_unknown_route_is_404(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    error_of(response, 404, "not_found")
    assert HEX_ID.match(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/predict", "POST"),
        ("PUT", "/predict", "POST"),
        ("DELETE", "/predict", "POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/readyz", "GET"),
        ("POST", "/metrics", "GET"),
        ("DELETE", "/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: str
) -> None:
    response = client.open(path, method=method)
    error_of(response, 405, "method_not_allowed")
    assert allowed in [part.strip() for part in response.headers["Allow"].split(",")]
    assert method not in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "status", "allowed"),
    [
        ("PUT", TF_PREDICT, 405, "POST"),
        ("DELETE", "/v1/models/fake/versions/3:predict", 405, "POST"),
        ("DELETE", "/v1/models/fake/metadata", 405, "GET"),
        ("POST", "/v1/models/fake/versions/3/extra", 404, None),
        ("GET", "/v1/models/fake/labels", 404, None),
    ],
)
def test_tfserving_routing_errors_keep_the_tf_shape(
    client: FlaskClient, method: str, path: str, status: int, allowed: str | None
) -> None:
    response = client.open(path, method=method)
    tf_error_of(response, status)
    if allowed is not None:
        assert allowed in [part.strip() for part in response.headers["Allow"].split(",")]


def test_head_and_options(client: FlaskClient) -> None:
    assert client.head("/healthz").status_code == 200
    response = client.options("/predict")
    assert response.status_code == 200
    assert "POST" in response.headers["Allow"]


# -- readiness ------------------------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "model": {"name": "fake", "version": "3"},
        "runtime": "fake",
    }


def test_loaded_with_warmup(predictor: FakePredictor, runtime: Runtime) -> None:
    assert runtime.settings.warmup
    assert predictor.warmed_up
    assert runtime.ready


def test_draining_after_begin_shutdown(app: Flask, client: FlaskClient) -> None:
    runtime: Runtime = app.extensions[EXTENSION]
    runtime.begin_shutdown()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "draining"}
    assert client.get("/healthz").status_code == 200
    # In-flight and late requests of a draining worker are still answered...
    assert client.post("/predict", json={"text": "good"}).status_code == 200
    # ...until the batcher stops: then they are refused, not left hanging.
    runtime.stop()
    response = client.post("/predict", json={"text": "good"})
    error_of(response, 503, "not_ready")
    assert response.headers["Retry-After"] == "1"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_batcher_turns_readiness_off_and_asks_for_replacement(
    make_settings: Callable[..., Settings],
) -> None:
    broken: list[bool] = []
    app = create_app(
        make_settings(),
        predictor=FakePredictor(),
        load_in_background=False,
        on_broken=lambda: broken.append(True),
    )
    client = app.test_client()
    runtime: Runtime = app.extensions[EXTENSION]
    assert client.get("/readyz").status_code == 200

    class Fatal(BaseException):
        pass

    def crash(batch: object) -> None:
        raise Fatal

    runtime.batcher._run = crash  # type: ignore[method-assign]
    started = time.perf_counter()
    error_of(client.post("/predict", json={"text": "good"}), 503, "not_ready")
    assert time.perf_counter() - started < 2  # promptly, not after request_timeout_s
    assert runtime.batcher._thread is not None
    runtime.batcher._thread.join(2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failed"}
    assert broken == [True]
    error = error_of(client.post("/predict", json={"text": "good"}), 503, "not_ready")
    assert "replaced" in error["message"]
    assert value(scrape(client), "sentiment_worker_ready") == 0.0
    runtime.stop()


def test_a_model_that_goes_away_turns_readiness_and_its_gauge_off(
    make_app: AppFactory,
) -> None:
    """As when a model process dies (SENTIMENT_INFERENCE=process): 503s, and back again."""
    fake = FakePredictor()
    app = make_app(fake)
    client = app.test_client()
    assert value(scrape(client), "sentiment_worker_ready") == 1.0

    fake.set_available(False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "reconnecting"}
    assert value(scrape(client), "sentiment_worker_ready") == 0.0
    response = client.post("/predict", json={"text": "good"})
    error = error_of(response, 503, "not_ready")
    assert "restarting" in error["message"]
    assert response.headers["Retry-After"] == "1"
    fake.set_available(False)  # told twice: counted once
    assert value(scrape(client), "sentiment_worker_ready") == 0.0

    fake.set_available(True)
    assert client.get("/readyz").status_code == 200
    assert value(scrape(client), "sentiment_worker_ready") == 1.0
    assert client.post("/predict", json={"text": "good"}).status_code == 200
    runtime: Runtime = app.extensions[EXTENSION]
    runtime.begin_shutdown()  # draining while ready: off once, not below zero
    fake.set_available(False)
    assert value(scrape(client), "sentiment_worker_ready") == 0.0
    runtime.stop()


def test_not_ready_while_loading(make_app: AppFactory) -> None:
    gate = threading.Event()
    fake = FakePredictor(load_gate=gate)
    app = make_app(fake, load_in_background=True)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "loading"}

    response = client.post("/predict", json={"text": "good"})
    error = error_of(response, 503, "not_ready")
    assert "not loaded" in error["message"]
    assert response.headers["Retry-After"] == "1"
    # Validation still comes first: a bad request is a 4xx even while loading.
    error_of(client.post("/predict", json={"texts": []}), 422, "validation_error")

    response = client.post(TF_PREDICT, json={"instances": ["good"]})
    tf_error_of(response, 503)
    assert response.headers["Retry-After"] == "1"
    response = client.get("/v1/models/fake")
    assert response.status_code == 503
    assert response.get_json()["model_version_status"][0]["state"] == "LOADING"
    tf_error_of(client.get("/v1/models/fake/metadata"), 503)

    gate.set()
    runtime: Runtime = app.extensions[EXTENSION]
    wait_until(lambda: runtime.ready)
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json={"text": "good"}).status_code == 200


def assert_answers_as_failed_load(client: FlaskClient) -> None:
    """Not ready (503 failed), /predict 503 not_ready, still alive."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failed"}
    error = error_of(client.post("/predict", json={"text": "good"}), 503, "not_ready")
    assert error["message"] == "model failed to load"
    assert client.get("/healthz").status_code == 200


def test_failed_load(make_app: AppFactory) -> None:
    fake = FakePredictor(load_error=RuntimeError("checksum mismatch in model.keras"))
    app = make_app(fake)
    client = app.test_client()
    assert_answers_as_failed_load(client)
    tf_error_of(client.post(TF_PREDICT, json={"instances": ["good"]}), 503)


def test_failed_load_calls_on_failure(make_settings: Callable[..., Settings]) -> None:
    failures: list[Exception] = []
    problem = RuntimeError("no such bundle")
    app = create_app(
        make_settings(),
        predictor=FakePredictor(load_error=problem),
        load_in_background=False,
        on_load_failure=failures.append,
    )
    assert failures == [problem]
    assert app.extensions[EXTENSION].load_error == "no such bundle"


@pytest.mark.parametrize("step", ["batcher", "explain queue", "model info metric"])
def test_a_failure_after_the_model_loaded_is_a_failed_load(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: str,
) -> None:
    """Not only ``predictor.load``: a step of the start after it that raises fails the load.

    Logged, ``load_error`` set, ``on_load_failure`` called (gunicorn: the worker stops and
    exits WORKER_BOOT_ERROR), never ready; not an exception out of the start, or, in the
    background, a loader thread that dies and leaves the worker "loading" for ever.
    """
    problem = RuntimeError(f"{step} would not start")

    def broken(*args: object, **kwargs: object) -> None:
        raise problem

    metrics = Metrics()
    if step == "batcher":
        monkeypatch.setattr(DynamicBatcher, "start", broken)
    elif step == "explain queue":
        monkeypatch.setattr(ExplainQueue, "start", broken)
    else:
        monkeypatch.setattr(metrics.model_info, "labels", broken)
    # On the loader's own logger: create_app's logging setup may replace the root's handlers.
    loader_log = logging.getLogger("service.loading")
    loader_log.addHandler(caplog.handler)
    try:
        failures: list[Exception] = []
        app = create_app(
            make_settings(),
            predictor=FakePredictor(),
            metrics=metrics,
            load_in_background=False,
            on_load_failure=failures.append,
        )
    finally:
        loader_log.removeHandler(caplog.handler)

    runtime: Runtime = app.extensions[EXTENSION]
    assert failures == [problem]
    assert runtime.load_error == f"{step} would not start"
    assert any(
        record.levelno == logging.CRITICAL and f"{step} would not start" in record.getMessage()
        for record in caplog.records
    )
    client = app.test_client()
    assert_answers_as_failed_load(client)
    assert value(scrape(client), "sentiment_worker_ready") == 0.0
    assert finish(app) == WORKER_BOOT_ERROR  # stops the runtime; the worker exits 3


# -- server-side failures -------------------------------------------------------------------


def test_inference_failure_is_500_and_the_app_recovers(
    client: FlaskClient, predictor: FakePredictor
) -> None:
    predictor.fail_with = RuntimeError("secret /opt/model/internals exploded")
    response = client.post("/predict", json={"texts": ["good", "bad"]})
    error = error_of(response, 500, "inference_failed")
    assert error["details"] is None
    text = response.get_data(as_text=True)
    assert "secret" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text
    assert HEX_ID.match(response.headers["X-Request-ID"])

    message = tf_error_of(client.post(TF_PREDICT, json={"instances": ["good"]}), 500)
    assert "secret" not in message

    predictor.fail_with = None
    response = client.post("/predict", json={"texts": ["good", "bad"]})
    assert response.status_code == 200
    assert [p["label"] for p in response.get_json()["predictions"]] == ["positive", "negative"]


def test_service_error_from_the_model_keeps_its_status(
    client: FlaskClient, predictor: FakePredictor
) -> None:
    predictor.fail_with = ServiceError("busy", status=503, code="overloaded")
    error = error_of(client.post("/predict", json={"text": "good"}), 503, "overloaded")
    assert error["message"] == "busy"


def test_unexpected_error_is_500_without_internals(
    client: FlaskClient, predictor: FakePredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: Any) -> list[list[int]]:
        raise KeyError("secret-internal-key")

    monkeypatch.setattr(predictor, "encode", broken)
    response = client.post("/predict", json={"text": "good"})
    error = error_of(response, 500, "internal_error")
    assert error["message"] == "internal error"
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    monkeypatch.undo()
    started = time.perf_counter()
    assert client.post("/predict", json={"text": "good"}).status_code == 200
    assert time.perf_counter() - started < 1.0  # the abandoned arrival holds no batch back


def test_timeout_is_503(make_app: AppFactory) -> None:
    app = make_app(FakePredictor(delay_s=0.3), request_timeout_s=0.05)
    client = app.test_client()
    response = client.post("/predict", json={"text": "good"})
    error = error_of(response, 503, "timeout")
    assert response.headers["Retry-After"] == "1"
    assert "0.05" in error["message"]


def test_overloaded_is_503_with_retry_after(make_app: AppFactory) -> None:
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    app = make_app(fake, max_queue_texts=5, max_batch_size=5)
    batcher = app.extensions[EXTENSION].batcher
    in_flight = batcher.submit([[2]] * 5)
    assert fake.entered.wait(5)  # the first batch is in the model; the queue is empty
    queued = batcher.submit([[4]] * 5)  # now the queue is full
    client = app.test_client()
    response = client.post("/predict", json={"text": "good"})
    error = error_of(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "1"
    assert "retry" in error["message"]
    tf_error_of(client.post(TF_PREDICT, json={"instances": ["good"]}), 503)
    gate.set()
    assert in_flight.result(5).shape == (5, 1)
    assert queued.result(5).shape == (5, 1)
    assert client.post("/predict", json={"text": "good"}).status_code == 200


def test_concurrent_requests_get_their_own_predictions(make_app: AppFactory) -> None:
    app = make_app(max_batch_wait_ms=5)
    words = ["good", "bad", "film", "great", "awful"]
    requests = [
        [" ".join(words[(i + j) % 5 : (i + j) % 5 + 2]) for j in range(3)] for i in range(12)
    ]
    results: dict[int, list[float]] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(requests))

    def call(index: int) -> None:
        try:
            client = app.test_client()
            barrier.wait(5)
            response = client.post("/predict", json={"texts": requests[index]})
            assert response.status_code == 200
            results[index] = [
                p["probabilities"]["positive"] for p in response.get_json()["predictions"]
            ]
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not failures
    for index, texts in enumerate(requests):
        assert results[index] == pytest.approx([fake_score(text) for text in texts])


# -- TensorFlow Serving routes --------------------------------------------------------------


def test_tfserving_predict(client: FlaskClient) -> None:
    instances = ["good good", "bad", "good bad film", ""]
    response = client.post(TF_PREDICT, json={"instances": instances})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"predictions"}
    assert body["predictions"] == [[pytest.approx(fake_score(text))] for text in instances]
    # The same numbers as the service's own API.
    own = client.post("/predict", json={"texts": instances}).get_json()["predictions"]
    assert [p["probabilities"]["positive"] for p in own] == pytest.approx(
        [row[0] for row in body["predictions"]]
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/fake/versions/3:predict",
        "/v1/models/fake:predict",
    ],
)
def test_tfserving_predict_paths_and_signature(client: FlaskClient, path: str) -> None:
    response = client.post(path, json={"instances": ["great"], "signature_name": "serving_default"})
    assert response.status_code == 200
    assert response.get_json() == {"predictions": [[1.0]]}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/other:predict",
        "/v1/models/fake/versions/4:predict",
        "/v1/models/other/versions/3:predict",
    ],
)
def test_tfserving_unknown_model_is_404(client: FlaskClient, path: str) -> None:
    message = tf_error_of(client.post(path, json={"instances": ["good"]}), 404)
    assert "Servable not found" in message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"instances": []}, id="empty"),
        pytest.param({"instances": [1]}, id="number"),
        pytest.param({"instances": "good"}, id="string"),
        pytest.param({"inputs": ["good"]}, id="columnar"),
        pytest.param({"instances": ["good"], "extra": True}, id="extra-key"),
        pytest.param({"instances": ["a"] * 6}, id="too-many"),
        pytest.param({"instances": ["x" * 51]}, id="too-long"),
        pytest.param(["good"], id="top-level-list"),
        pytest.param(None, id="top-level-null"),
    ],
)
def test_tfserving_schema_errors_are_422(client: FlaskClient, body: Any) -> None:
    tf_error_of(post_raw(client, TF_PREDICT, json.dumps(body).encode()), 422)


def test_tfserving_request_errors_keep_the_tf_shape(client: FlaskClient) -> None:
    tf_error_of(post_raw(client, TF_PREDICT, b'{"instances": ['), 400)
    tf_error_of(post_raw(client, TF_PREDICT, b"[" * 4000), 400)
    tf_error_of(post_raw(client, TF_PREDICT, b'{"instances": ["a"]}', "text/plain"), 415)
    tf_error_of(post_raw(client, TF_PREDICT, json.dumps({"instances": ["x" * 5000]}).encode()), 413)


def test_tfserving_model_status(client: FlaskClient) -> None:
    for path in ("/v1/models/fake", "/v1/models/fake/versions/3"):
        response = client.get(path)
        assert response.status_code == 200
        [status] = response.get_json()["model_version_status"]
        assert status["version"] == "3"
        assert status["state"] == "AVAILABLE"
        assert status["status"]["error_code"] == "OK"
    tf_error_of(client.get("/v1/models/other"), 404)
    tf_error_of(client.get("/v1/models/fake/versions/9"), 404)


def test_tfserving_metadata(client: FlaskClient) -> None:
    response = client.get("/v1/models/fake/metadata")
    assert response.status_code == 200
    body = response.get_json()
    assert body["model_spec"] == {"name": "fake", "version": "3"}
    metadata = body["metadata"]
    assert metadata["labels"] == LABELS
    assert metadata["maxlen"] == 16
    assert metadata["padding"] == "post"
    assert metadata["truncating"] == "pre"
    assert metadata["vocabulary_size"] == 10
    assert "checksums" not in metadata
    assert client.get("/v1/models/fake/versions/3/metadata").get_json() == body
    tf_error_of(client.get("/v1/models/other/metadata"), 404)


# -- /metrics -------------------------------------------------------------------------------


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(client: FlaskClient) -> Samples:
    """Return every sample of /metrics: sample name -> [(labels, value)]."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, sample_name: str, /, **labels: str) -> float:
    """Return the sum of the samples of ``sample_name`` whose labels include ``labels``."""
    return sum(
        v
        for sample_labels, v in samples.get(sample_name, [])
        if labels.items() <= sample_labels.items()
    )


def test_a_worker_whose_model_is_elsewhere_records_waits_not_model_calls(
    make_app: AppFactory,
) -> None:
    """Process inference: an HTTP worker's batches go to the model process, which records the
    model calls (``BatchMetrics``); counting them here too would count each call twice."""
    remote = FakePredictor(runs_model_here=False)
    client = make_app(remote).test_client()
    for text in ("good", "bad film", "good great"):
        assert client.post("/predict", json={"text": text}).status_code == 200
    samples = scrape(client)
    assert value(samples, "sentiment_queue_wait_seconds_count") == 3  # one per request
    assert value(samples, "sentiment_batch_size_count") == 0
    assert value(samples, "sentiment_inference_duration_seconds_count") == 0
    assert value(samples, "sentiment_texts_total") == 3


def test_metrics(client: FlaskClient, predictor: FakePredictor) -> None:
    assert (
        client.post("/predict", json={"texts": ["good", "bad film", "good great"]}).status_code
        == 200
    )
    assert client.post("/predict", json={"text": "unknown words only"}).status_code == 200
    assert client.post(TF_PREDICT, json={"instances": ["awful", "great"]}).status_code == 200
    assert client.post("/predict", json={"texts": []}).status_code == 422
    for probe in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/healthz"):
        assert client.get(probe).status_code == 200

    samples = scrape(client)
    requests = "sentiment_requests_total"
    assert value(samples, requests, route="/predict", method="POST", status="200") == 2
    assert value(samples, requests, route="/predict", method="POST", status="422") == 1
    assert value(samples, requests, route="/v1/models/<name>:predict", status="200") == 1
    routes = {labels["route"] for labels, _ in samples[requests]}
    assert routes == {"/predict", "/v1/models/<name>:predict"}  # no probes, no scrapes
    assert value(samples, "sentiment_request_duration_seconds_count", route="/predict") == 3

    assert value(samples, "sentiment_texts_total") == 6
    assert value(samples, "sentiment_predictions_total", label="positive") == 3
    assert value(samples, "sentiment_predictions_total", label="negative") == 3
    assert value(samples, "sentiment_batch_size_count") == len(predictor.batch_sizes)
    assert value(samples, "sentiment_batch_size_sum") == 6
    assert value(samples, "sentiment_inference_duration_seconds_count") == len(
        predictor.batch_sizes
    )
    assert value(samples, "sentiment_model_info", name="fake", version="3") == 1.0
    assert value(samples, "sentiment_worker_ready") == 1.0
    assert value(samples, "sentiment_oov_ratio_count") == 6
    # "unknown words only" is all out-of-vocabulary; "bad film", "good" etc. have none.
    assert value(samples, "sentiment_oov_ratio_sum") == pytest.approx(1.0)
    assert value(samples, "sentiment_oov_ratio_bucket", le="0.0") == 5
    assert not any(name.endswith("_created") for name in samples)


def test_metrics_count_errors_and_unmatched_routes(client: FlaskClient) -> None:
    client.get("/nope")
    client.get("/predict")
    post_raw(client, "/predict", b"{")
    samples = scrape(client)
    requests = "sentiment_requests_total"
    assert value(samples, requests, route="unmatched", status="404") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="405") == 1
    assert value(samples, requests, route="/predict", status="400") == 1


def series_count(samples: Samples) -> int:
    """Return how many distinct series /metrics exposes."""
    return sum(len(rows) for rows in samples.values())


@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
def test_junk_requests_add_a_bounded_number_of_series(make_app: AppFactory, auth: bool) -> None:
    """Methods, paths and model names are the client's: none may become a label value."""
    app = make_app(**({"auth_tokens": "sekret"} if auth else {}))
    client = app.test_client()
    rng = random.Random(12)
    client.post("/predict", json={"text": "good"})  # one of each kind of series exists
    before = series_count(scrape(client))
    alphabet = string.ascii_letters + string.digits + "-_.~!$&'*+^`|"
    for _ in range(1000):
        method = "".join(rng.choices(string.ascii_uppercase + "-_!~", k=rng.randint(1, 12)))
        name = "".join(rng.choices(alphabet, k=rng.randint(1, 20)))
        path = rng.choice(
            [
                f"/{name}",
                f"/v1/models/{name}:predict",
                f"/v1/models/{name}/versions/{rng.randint(0, 10**9)}",
                f"/predict/{name}",
                "/predict",
            ]
        )
        client.open(path, method=rng.choice([method, "POST", "GET"]), json={"text": name})
    samples = scrape(client)
    # A constant: one series per (documented route, method, status) the junk can reach.
    assert series_count(samples) - before <= 60
    requests = samples["sentiment_requests_total"]
    assert {labels["method"] for labels, _ in requests} <= METRIC_METHODS | {OTHER_METHOD}
    known_routes = {route_label(rule.rule) for rule in app.url_map.iter_rules()}
    assert {labels["route"] for labels, _ in requests} <= known_routes | {UNMATCHED_ROUTE}
    assert value(samples, "sentiment_requests_total", method=OTHER_METHOD) > 0


def test_metrics_after_shutdown(app: Flask, client: FlaskClient) -> None:
    app.extensions[EXTENSION].begin_shutdown()
    assert value(scrape(client), "sentiment_worker_ready") == 0.0


# -- /openapi.json --------------------------------------------------------------------------


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Return the object a local ``$ref`` points at."""
    assert ref.startswith("#/")
    target: Any = document
    for part in ref[2:].split("/"):
        assert part in target, ref
        target = target[part]
    return target


def refs(node: Any) -> list[str]:
    """Return every ``$ref`` in a JSON tree."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for child in node.values() for ref in refs(child)]
    if isinstance(node, list):
        return [ref for child in node for ref in refs(child)]
    return []


def test_openapi(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert {"/predict", "/v1/models/{name}:predict", "/healthz", "/readyz"} <= set(
        document["paths"]
    )
    for ref in refs(document):  # every reference resolves
        resolve(document, ref)

    operation = document["paths"]["/predict"]["post"]
    ref = operation["requestBody"]["content"][JSON]["schema"]["$ref"]
    request_schema = resolve(document, ref)
    assert ref.startswith("#/components/schemas/")
    assert set(request_schema["properties"]) == {"text", "texts"}
    texts = next(s for s in request_schema["properties"]["texts"]["anyOf"] if s["type"] == "array")
    assert texts["maxItems"] == 5
    assert texts["items"]["maxLength"] == 50
    text = next(s for s in request_schema["properties"]["text"]["anyOf"] if s["type"] == "string")
    assert text["maxLength"] == 50
    assert {"200", "400", "413", "415", "422", "503"} <= set(operation["responses"])

    tf_operation = document["paths"]["/v1/models/{name}:predict"]["post"]
    tf_ref = tf_operation["requestBody"]["content"][JSON]["schema"]["$ref"]
    assert resolve(document, tf_ref)["properties"]["instances"]["maxItems"] == 5
    assert "4096" in document["info"]["description"]


def test_openapi_follows_the_settings(make_app: AppFactory) -> None:
    client = make_app(max_texts_per_request=7, max_text_chars=99).test_client()
    document = client.get("/openapi.json").get_json()
    schema = document["components"]["schemas"]["PredictRequest"]
    texts = next(s for s in schema["properties"]["texts"]["anyOf"] if s["type"] == "array")
    assert texts["maxItems"] == 7
    assert texts["items"]["maxLength"] == 99


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["abc-123", "A.b_c:d-9", "x" * 128])
def test_valid_request_id_is_echoed(client: FlaskClient, request_id: str) -> None:
    response = client.post("/predict", json={"text": "good"}, headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id
    response = client.get("/nope", headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id", ["has spaces", "x" * 500, "x" * 129, "", "a;b", "<script>", "a\tb", "ü"]
)
def test_invalid_request_id_is_replaced(client: FlaskClient, request_id: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert HEX_ID.match(response.headers["X-Request-ID"])


def test_request_ids_are_generated_per_request(client: FlaskClient) -> None:
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5
    assert all(HEX_ID.match(i) for i in ids)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/metrics", 200),
        ("POST", "/predict", 415),
        ("GET", "/nope", 404),
        ("GET", "/predict", 405),
    ],
)
def test_security_headers(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
