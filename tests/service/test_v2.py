"""The Open Inference Protocol (V2) routes through the Flask test client, over the fake model."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from service.state import EXTENSION
from service.v2_binary import HEADER_LENGTH, encode_bytes
from tests.fixtures import FakePredictor, fake_score

AppFactory = Callable[..., Flask]  # the ``make_app`` fixture
INFER = "/v2/models/fake/infer"
TEXTS = ["good good film", "bad", "the film was great great", "awful film"]


def text_input(texts: list[str], shape: list[int] | None = None) -> dict[str, Any]:
    """Return the V2 input tensor of ``texts`` as JSON data."""
    return {"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)], "data": texts}


def binary_request(
    texts: list[bytes],
    *,
    outputs: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    size: int | None = None,
    shape: list[int] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) of a request whose texts travel as binary BYTES."""
    raw = encode_bytes(texts)
    tensor = {
        "name": "text",
        "datatype": "BYTES",
        "shape": shape or [len(texts)],
        "parameters": {"binary_data_size": len(raw) if size is None else size},
    }
    request: dict[str, Any] = {"inputs": [tensor]}
    if outputs is not None:
        request["outputs"] = outputs
    if parameters is not None:
        request["parameters"] = parameters
    header = orjson.dumps(request)
    return header + raw, {HEADER_LENGTH: str(len(header))}


def plain_error(response: TestResponse, status: int, says: str = "") -> str:
    """Assert the V2 error shape, ``{"error": "<str>"}``, and return the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str)
    assert says in body["error"]
    message: str = body["error"]
    return message


def split_response(response: TestResponse) -> tuple[dict[str, Any], bytes]:
    """Return (JSON header, binary section) of a binary inference response."""
    data = response.get_data()
    length = int(response.headers[HEADER_LENGTH])
    header: dict[str, Any] = orjson.loads(data[:length])
    return header, data[length:]


def decode_outputs(response: TestResponse) -> dict[str, np.ndarray]:
    """Return every output tensor of a response, JSON or binary, as a numpy array."""
    if HEADER_LENGTH in response.headers:
        body, binary = split_response(response)
    else:
        body, binary = response.get_json(), b""
    arrays = {}
    offset = 0
    for output in body["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            array = np.array(
                output["data"], dtype=object if output["datatype"] == "BYTES" else "f4"
            )
        else:
            chunk = binary[offset : offset + size]
            offset += size
            if output["datatype"] == "FP32":
                array = np.frombuffer(chunk, dtype="<f4")
            else:
                array = np.array(_bytes_elements(chunk), dtype=object)
        arrays[output["name"]] = array.reshape(output["shape"])
    assert offset == len(binary)
    return arrays


def _bytes_elements(chunk: bytes) -> list[str]:
    elements, offset = [], 0
    while offset < len(chunk):
        (length,) = struct.unpack_from("<I", chunk, offset)
        elements.append(chunk[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return elements


def predict_scores(client: FlaskClient, texts: list[str]) -> list[list[float]]:
    """Return /predict's probabilities for ``texts``, in label order."""
    predictions = client.post("/predict", json={"texts": texts}).get_json()["predictions"]
    return [list(p["probabilities"].values()) for p in predictions]


# -- health and metadata --------------------------------------------------------------------


def test_live_and_ready(client: FlaskClient) -> None:
    live = client.get("/v2/health/live")
    assert (live.status_code, live.get_json()) == (200, {"live": True})
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (200, {"ready": True})
    for path in ("/v2/models/fake/ready", "/v2/models/fake/versions/3/ready"):
        response = client.get(path)
        assert (response.status_code, response.get_json()) == (200, {"ready": True})


def test_not_ready_until_loaded(make_app: AppFactory) -> None:
    gate = threading.Event()
    client = make_app(FakePredictor(load_gate=gate), load_in_background=True).test_client()
    assert client.get("/v2/health/live").status_code == 200
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (503, {"ready": False})
    assert client.get("/v2/models/fake/ready").status_code == 503
    plain_error(client.get("/v2/models/fake"), 503, "not loaded")
    plain_error(client.post(INFER, json={"inputs": [text_input(["good"])]}), 503)
    gate.set()


def test_ready_follows_draining(app: Flask, client: FlaskClient) -> None:
    app.extensions[EXTENSION].begin_shutdown()
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/fake/ready").status_code == 503


def test_server_metadata(client: FlaskClient) -> None:
    body = client.get("/v2").get_json()
    assert body["name"] == "sentiment-service"
    assert isinstance(body["version"], str)
    assert "binary_tensor_data" in body["extensions"]


def test_model_metadata(client: FlaskClient) -> None:
    for path in ("/v2/models/fake", "/v2/models/fake/versions/3"):
        body = client.get(path).get_json()
        assert body == {
            "name": "fake",
            "versions": ["3"],
            "platform": "tensorflow_keras",
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
            ],
        }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/other"),
        ("GET", "/v2/models/fake/versions/4"),
        ("GET", "/v2/models/other/ready"),
        ("GET", "/v2/models/fake/versions/4/ready"),
        ("POST", "/v2/models/other/infer"),
        ("POST", "/v2/models/fake/versions/4/infer"),
        ("GET", "/v2/nothing/here"),
        ("GET", "/v2/"),
    ],
)
def test_unknown_models_versions_and_paths_are_plain_404s(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, json={"inputs": [text_input(["good"])]})
    plain_error(response, 404)


def test_wrong_method_is_a_plain_405(client: FlaskClient) -> None:
    response = client.get(INFER)
    plain_error(response, 405)
    assert response.headers["Allow"] == "OPTIONS, POST"


# -- inference, JSON ------------------------------------------------------------------------


def test_infer_json_scores_equal_predict(client: FlaskClient) -> None:
    request = {"id": "req-1", "parameters": {"anything": 1}, "inputs": [text_input(TEXTS)]}
    response = client.post(INFER, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("fake", "3", "req-1")
    probabilities, labels = body["outputs"]
    assert probabilities["name"] == "probabilities"
    assert probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [len(TEXTS), 2]
    scores = np.array(probabilities["data"], dtype=np.float32).reshape(len(TEXTS), 2).tolist()
    assert scores == predict_scores(client, TEXTS)
    assert [row[1] for row in scores] == pytest.approx([fake_score(t) for t in TEXTS])
    assert labels == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [len(TEXTS)],
        "data": ["positive", "negative", "negative", "negative"],
    }


@pytest.mark.parametrize(
    "tensor",
    [
        text_input(TEXTS, shape=[len(TEXTS), 1]),
        {**text_input(TEXTS, shape=[len(TEXTS), 1]), "data": [[t] for t in TEXTS]},
    ],
    ids=["n-by-1 flat", "n-by-1 nested"],
)
def test_infer_accepts_n_by_1_flat_or_nested(client: FlaskClient, tensor: dict[str, Any]) -> None:
    response = client.post("/v2/models/fake/versions/3/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "id" not in response.get_json()
    assert decode_outputs(response)["probabilities"].tolist() == predict_scores(client, TEXTS)


def test_infer_returns_the_outputs_asked_for_in_order(client: FlaskClient) -> None:
    request = {"inputs": [text_input(TEXTS)], "outputs": [{"name": "label"}]}
    body = client.post(INFER, json=request).get_json()
    assert [output["name"] for output in body["outputs"]] == ["label"]
    request["outputs"] = [{"name": "label"}, {"name": "probabilities"}]
    body = client.post(INFER, json=request).get_json()
    assert [output["name"] for output in body["outputs"]] == ["label", "probabilities"]


def test_infer_accepts_any_content_type(client: FlaskClient) -> None:
    body = orjson.dumps({"inputs": [text_input(["good"])]})
    for content_type in (None, "application/json", "text/plain"):
        headers = {"Content-Type": content_type} if content_type else {}
        assert client.post(INFER, data=body, headers=headers).status_code == 200


# -- inference, binary ----------------------------------------------------------------------


def test_binary_in_binary_out_scores_equal_predict(client: FlaskClient) -> None:
    body, headers = binary_request(
        [text.encode() for text in TEXTS], parameters={"binary_data_output": True}
    )
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/octet-stream"
    header, binary = split_response(response)
    sizes = [output["parameters"]["binary_data_size"] for output in header["outputs"]]
    assert sizes[0] == len(TEXTS) * 2 * 4
    assert sum(sizes) == len(binary)
    assert all("data" not in output for output in header["outputs"])
    outputs = decode_outputs(response)
    assert outputs["probabilities"].tolist() == predict_scores(client, TEXTS)
    assert outputs["label"].tolist() == ["positive", "negative", "negative", "negative"]


def test_binary_data_per_output_overrides_the_request_default(client: FlaskClient) -> None:
    outputs: list[dict[str, Any]] = [
        {"name": "probabilities", "parameters": {"binary_data": False}},
        {"name": "label"},
    ]
    body, headers = binary_request(
        [b"good"], outputs=outputs, parameters={"binary_data_output": True}
    )
    response = client.post(INFER, data=body, headers=headers)
    header, binary = split_response(response)
    probabilities, label = header["outputs"]
    assert "data" in probabilities
    assert label["parameters"] == {"binary_data_size": len(binary)}
    assert binary == encode_bytes([b"positive"])


def test_binary_input_json_output(client: FlaskClient) -> None:
    body, headers = binary_request([b"good", "caf\u00e9 awful".encode()])
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert HEADER_LENGTH not in response.headers
    assert response.get_json()["outputs"][1]["data"] == ["positive", "negative"]


def _with_header(body: bytes, length: str) -> tuple[bytes, dict[str, str]]:
    return body, {HEADER_LENGTH: length}


@pytest.mark.parametrize(
    ("case", "says"),
    [
        (binary_request([b"good"], size=3), "adds up to"),
        (binary_request([b"good"], size=10_000), "adds up to"),
        (binary_request([b"good"], size=-1), "non-negative"),
        (binary_request([b"good"], size=2**63), "adds up to"),
        (binary_request([b"good", b"bad"], shape=[3]), "its shape says 3"),
        (binary_request([b"good", b"bad"], shape=[1]), "more than the 1 elements"),
        (binary_request([b"\xff\xfe not utf-8"]), "not valid UTF-8"),
        (binary_request([b"good"], parameters={"binary_data_output": "yes"}), "true or false"),
        (_with_header(b'{"inputs": []}', "9999"), "body has only"),
        (_with_header(b'{"inputs": []}', "-3"), "non-negative integer"),
        (_with_header(b'{"inputs": []}', "ten"), "non-negative integer"),
        (_with_header(b'{"inputs": []}xx', "14"), "inputs"),
        (_with_header(b'{"inputs": [', "12"), "not valid JSON"),
        (_with_header(b"\xff\xfe{}", "4"), "not valid JSON"),
    ],
)
def test_hostile_binary_bodies_are_plain_400s(
    client: FlaskClient, case: tuple[bytes, dict[str, str]], says: str
) -> None:
    body, headers = case
    plain_error(client.post(INFER, data=body, headers=headers), 400, says)


def test_json_input_with_trailing_binary_is_refused(client: FlaskClient) -> None:
    header = orjson.dumps({"inputs": [text_input(["good"])]})
    response = client.post(
        INFER, data=header + b"\x00\x00", headers={HEADER_LENGTH: str(len(header))}
    )
    plain_error(response, 400, "adds up to 0 bytes but 2 bytes follow")


def test_binary_element_length_past_the_end_is_refused(client: FlaskClient) -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    raw = struct.pack("<I", 2**31) + b"abcd"
    response = client.post(INFER, data=header + raw, headers={HEADER_LENGTH: str(len(header))})
    plain_error(response, 400, "past the end")


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "says"),
    [
        ({}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [text_input(["a"]), text_input(["b"])]}, "inputs"),
        ({"inputs": [{**text_input(["a"]), "name": "other"}]}, "inputs.0.name"),
        ({"inputs": [{**text_input(["a"]), "datatype": "FP32"}]}, "inputs.0.datatype"),
        ({"inputs": [text_input(["a", "b"], shape=[3])]}, "its shape [3] says 3"),
        ({"inputs": [text_input(["a"], shape=[1, 2])]}, "[n] or [n, 1]"),
        ({"inputs": [text_input(["a"], shape=[1, 1, 1])]}, "inputs.0.shape"),
        ({"inputs": [text_input([], shape=[0])]}, "no text"),
        ({"inputs": [text_input(["a"], shape=[-1])]}, "inputs.0.shape"),
        ({"inputs": [{**text_input(["a"]), "data": [1]}]}, "inputs.0.data"),
        ({"inputs": [{**text_input(["a"]), "data": [["a"]]}]}, "does not match the shape"),
        ({"inputs": [{**text_input(["a"]), "data": None}]}, "neither data nor"),
        (
            {"inputs": [{**text_input(["a"]), "parameters": {"binary_data_size": 0}}]},
            "both data and binary_data_size",
        ),
        ({"inputs": [text_input(["a"])], "outputs": [{"name": "logits"}]}, "outputs.0.name"),
        (
            {"inputs": [text_input(["a"])], "outputs": [{"name": "label"}, {"name": "label"}]},
            "more than once",
        ),
        (
            {
                "inputs": [text_input(["a"])],
                "outputs": [{"name": "label", "parameters": {"classification": 2}}],
            },
            "classification extension is not supported",
        ),
        ({"inputs": [text_input(["a"])], "parameters": {"nested": {"a": 1}}}, "parameters"),
        ({"inputs": [text_input(["a"])], "id": 7}, "id"),
        ({"inputs": [text_input(["t"] * 6)]}, "6 texts exceed the limit of 5"),
        ({"inputs": [text_input(["x" * 51])]}, "51 characters, over the limit of 50"),
    ],
)
def test_bad_requests_are_plain_400s(
    client: FlaskClient, request_body: dict[str, Any], says: str
) -> None:
    plain_error(client.post(INFER, json=request_body), 400, says)


def test_limits_hold_for_binary_texts_too(client: FlaskClient) -> None:
    body, headers = binary_request([b"x" * 51])
    plain_error(client.post(INFER, data=body, headers=headers), 400, "over the limit of 50")
    body, headers = binary_request([b"t"] * 6)
    plain_error(client.post(INFER, data=body, headers=headers), 400, "exceed the limit of 5")


def test_oversized_body_is_a_plain_413(client: FlaskClient) -> None:
    body, headers = binary_request([b"x" * 4096])
    plain_error(client.post(INFER, data=body, headers=headers), 413)


def test_compressed_body_is_a_plain_415(client: FlaskClient) -> None:
    response = client.post(
        INFER, data=b"\x1f\x8b", headers={"Content-Encoding": "gzip", "Content-Type": "x/y"}
    )
    plain_error(response, 415, "gzip")


# -- shared with /predict: batches, auth, metrics -------------------------------------------


def test_v2_and_predict_share_batches(make_app: AppFactory) -> None:
    gate = threading.Event()
    fake = FakePredictor(gate=gate)
    app = make_app(fake)
    batcher = app.extensions[EXTENSION].batcher
    in_flight = batcher.submit([[2]])
    assert fake.entered.wait(5)  # the model is busy: the next requests queue behind it
    results: list[TestResponse] = []

    def call(path: str, body: dict[str, Any]) -> None:
        results.append(app.test_client().post(path, json=body))

    threads = [
        threading.Thread(target=call, args=(INFER, {"inputs": [text_input(["good", "bad"])]})),
        threading.Thread(target=call, args=("/predict", {"text": "good"})),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while batcher.queued_items < 3:
        assert time.monotonic() < deadline, "requests never queued"
        time.sleep(0.005)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert in_flight.result(5).shape == (1, 1)
    assert [response.status_code for response in results] == [200, 200]
    assert fake.batch_sizes == [1, 3]  # the V2 request's 2 texts and /predict's 1, together


def test_auth_guards_model_routes_but_not_probes(make_app: AppFactory) -> None:
    client = make_app(auth_tokens="sekret").test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    for method, path in (
        ("GET", "/v2"),
        ("GET", "/v2/models/fake"),
        ("GET", "/v2/models/fake/ready"),
        ("POST", INFER),
        ("GET", "/v2/unknown"),
    ):
        response = client.open(path, method=method, json={"inputs": [text_input(["good"])]})
        plain_error(response, 401, "bearer token")
    authorized = client.post(
        INFER,
        json={"inputs": [text_input(["good"])]},
        headers={"Authorization": "Bearer sekret"},
    )
    assert authorized.status_code == 200


def test_metrics_count_model_routes_with_bounded_labels_not_probes(client: FlaskClient) -> None:
    client.get("/v2/health/live")
    client.get("/v2/health/ready")
    client.post(INFER, json={"inputs": [text_input(["good"])]})
    client.post("/v2/models/fake/versions/3/infer", json={"inputs": [text_input(["good"])]})
    for name in ("a", "b", "c"):
        client.post(f"/v2/models/{name}/infer", json={})
    text = client.get("/metrics").get_data(as_text=True)
    routes = {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sentiment_requests_total"
    }
    assert routes[("/v2/models/<name>/infer", "200")] == 1
    assert routes[("/v2/models/<name>/versions/<version>/infer", "200")] == 1
    assert routes[("/v2/models/<name>/infer", "404")] == 3
    assert not any(route.startswith("/v2/health") for route, _ in routes)
