"""The V2 routes against the real server, called by Triton's and KServe's own Python clients.

Both clients are test-only dependencies (the dev extra). Every score they get must equal what
/predict answers for the same texts: the protocol changes the envelope, never the numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from tritonclient.utils import InferenceServerException

from tests.fixtures import make_reviews
from tests.integration.server import Server, running_server

pytestmark = pytest.mark.integration

MODEL = "tiny"  # tests/conftest.py trains it as name "tiny", version "7"
VERSION = "7"
TEXTS = [text for text, _ in make_reviews(6, seed=15)] + ["", "caf\u00e9 \U0001f600 great"]


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("v2-server")
    # Every XLA shape compiled before ready: the scores are compared bit for bit, and with
    # background compilation a shape can move from the graph to XLA between two calls (last
    # bits differ; seen on a loaded machine).
    with running_server(
        tiny_bundle, tmp, workers="1", threads="4", compile_in_background="false"
    ) as started:
        yield started


@pytest.fixture(scope="module")
def expected(server: Server) -> tuple[np.ndarray, list[str]]:
    """/predict's probabilities (label order) and labels for TEXTS."""
    reply = requests.post(f"{server.url}/predict", json={"texts": TEXTS}, timeout=30)
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    scores = np.array([list(p["probabilities"].values()) for p in predictions], dtype=np.float32)
    return scores, [p["label"] for p in predictions]


@pytest.fixture
def triton_client(server: Server) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(urlparse(server.url).netloc)
    yield client
    client.close()


def texts_tensor(shape: tuple[int, ...] = (len(TEXTS),)) -> np.ndarray:
    return np.array([text.encode() for text in TEXTS], dtype=np.object_).reshape(shape)


def labels_of(array: np.ndarray) -> list[str]:
    return [item.decode() if isinstance(item, bytes) else str(item) for item in array.ravel()]


# -- tritonclient.http ----------------------------------------------------------------------


def test_triton_health_and_metadata(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL)
    assert triton_client.is_model_ready(MODEL, VERSION)
    assert not triton_client.is_model_ready("other")
    assert "binary_tensor_data" in triton_client.get_server_metadata()["extensions"]
    metadata = triton_client.get_model_metadata(MODEL)
    assert metadata["name"] == MODEL
    assert metadata["versions"] == [VERSION]
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("probabilities", "FP32", [-1, 2]),
        ("label", "BYTES", [-1]),
    ]


@pytest.mark.parametrize("binary_input", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_output", [True, False], ids=["binary-out", "json-out"])
def test_triton_infer_equals_predict(
    triton_client: triton.InferenceServerClient,
    expected: tuple[np.ndarray, list[str]],
    binary_input: bool,
    binary_output: bool,
) -> None:
    scores, labels = expected
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(texts_tensor(), binary_data=binary_input)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=binary_output),
        triton.InferRequestedOutput("label", binary_data=binary_output),
    ]
    result = triton_client.infer(MODEL, [text], outputs=outputs, request_id="t-1")
    response = result.get_response()
    assert response["id"] == "t-1"
    assert response["model_name"] == MODEL
    for output in response["outputs"]:
        assert ("data" not in output) == binary_output
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (len(TEXTS), 2)
    np.testing.assert_array_equal(probabilities, scores)
    assert labels_of(result.as_numpy("label")) == labels


def test_triton_default_outputs_and_one_output_by_name(
    triton_client: triton.InferenceServerClient, expected: tuple[np.ndarray, list[str]]
) -> None:
    scores, labels = expected
    text = triton.InferInput("text", [len(TEXTS), 1], "BYTES")
    text.set_data_from_numpy(texts_tensor((len(TEXTS), 1)))
    everything = triton_client.infer(MODEL, [text], model_version=VERSION)  # all, binary
    np.testing.assert_array_equal(everything.as_numpy("probabilities"), scores)
    assert labels_of(everything.as_numpy("label")) == labels
    only_label = triton_client.infer(
        MODEL, [text], outputs=[triton.InferRequestedOutput("label", binary_data=False)]
    )
    assert [o["name"] for o in only_label.get_response()["outputs"]] == ["label"]
    assert only_label.as_numpy("probabilities") is None
    assert labels_of(only_label.as_numpy("label")) == labels


def test_triton_sees_errors(triton_client: triton.InferenceServerClient) -> None:
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"good"], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="unknown model") as missing:
        triton_client.infer("other", [text])
    assert missing.value.status() == "404"
    wrong = triton.InferInput("scores", [1], "FP32")
    wrong.set_data_from_numpy(np.array([0.5], dtype=np.float32))
    with pytest.raises(InferenceServerException, match=r"inputs\.0") as invalid:
        triton_client.infer(MODEL, [wrong])
    assert invalid.value.status() == "400"


# -- kserve's InferenceRESTClient -----------------------------------------------------------


def kserve_call(method: str, *args: Any, **kwargs: Any) -> Any:
    """Run one call of a fresh InferenceRESTClient (async) to completion."""

    async def call() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
        try:
            return await getattr(client, method)(*args, **kwargs)
        finally:
            await client.close()

    return asyncio.run(call())


def test_kserve_health(server: Server) -> None:
    assert kserve_call("is_server_live", server.url) is True
    assert kserve_call("is_server_ready", server.url) is True
    assert kserve_call("is_model_ready", server.url, MODEL) is True
    assert kserve_call("is_model_ready", server.url, "other") is False


@pytest.mark.parametrize("binary_input", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_output", [True, False], ids=["binary-out", "json-out"])
def test_kserve_infer_equals_predict(
    server: Server,
    expected: tuple[np.ndarray, list[str]],
    binary_input: bool,
    binary_output: bool,
) -> None:
    scores, labels = expected
    text = InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(texts_tensor(), binary_data=binary_input)
    request = InferRequest(
        model_name=MODEL,
        infer_inputs=[text],
        request_id="k-1",
        parameters={"binary_data_output": binary_output},
    )
    response = kserve_call("infer", server.url, request, model_name=MODEL)
    assert response.id == "k-1"
    assert response.model_name == MODEL
    outputs = {output.name: output for output in response.outputs}
    assert set(outputs) == {"probabilities", "label"}
    probabilities = outputs["probabilities"].as_numpy()
    np.testing.assert_array_equal(probabilities.astype(np.float32), scores)
    assert labels_of(outputs["label"].as_numpy()) == labels


def test_kserve_one_output_by_name(server: Server, expected: tuple[np.ndarray, list[str]]) -> None:
    scores, _ = expected
    text = InferInput("text", [len(TEXTS)], "BYTES", data=TEXTS)
    request = InferRequest(
        model_name=MODEL, infer_inputs=[text], request_outputs=[RequestedOutput("probabilities")]
    )
    response = kserve_call("infer", server.url, request, model_name=MODEL)
    assert [output.name for output in response.outputs] == ["probabilities"]
    np.testing.assert_array_equal(
        response.outputs[0].as_numpy().astype(np.float32).reshape(scores.shape), scores
    )
