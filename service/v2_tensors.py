"""V2 tensors <-> this model: the input tensor to texts, predictions to output tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.decoding import Predictions
from service.errors import InvalidInferenceRequest
from service.schemas import Limits
from service.v2_binary import decode_bytes, encode_bytes, encode_fp32, split_tensors
from service.v2_schemas import (
    INPUT_NAME,
    LABEL,
    PROBABILITIES,
    InferenceRequest,
    Parameters,
    RequestInput,
)
from training.bundle import BundleMetadata

BINARY_SIZE = "binary_data_size"
# Parameters of Triton extensions this server does not implement: refused, not ignored, since
# ignoring them would answer something other than what was asked.
_UNSUPPORTED = {"classification": "classification", "shared_memory_region": "shared memory"}


@dataclass(frozen=True)
class OutputRequest:
    """One output to return, and whether as binary data."""

    name: str
    binary: bool


def model_metadata(metadata: BundleMetadata) -> dict[str, Any]:
    """Return the V2 model metadata: one BYTES input, two outputs, -1 for the batch size."""
    return {
        "name": metadata.name,
        "versions": [metadata.version],
        "platform": "tensorflow_keras",
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, len(metadata.labels)]},
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
        ],
    }


def input_texts(request: InferenceRequest, binary: bytes, limits: Limits) -> list[str]:
    """Return the input tensor's texts, from JSON ``data`` or the binary section."""
    tensor = request.inputs[0]
    _refuse_unsupported(tensor.parameters, f"input '{tensor.name}'")
    count = _text_count(tensor.shape, limits)
    size = _binary_size(tensor)
    if size is None:
        split_tensors(binary, [])  # no binary input: nothing may follow the JSON header
        texts = _json_texts(tensor, count)
    else:
        if tensor.data is not None:
            raise InvalidInferenceRequest(f"input '{tensor.name}' has both data and {BINARY_SIZE}")
        (chunk,) = split_tensors(binary, [size])
        texts = [_utf8(element, index) for index, element in enumerate(decode_bytes(chunk, count))]
    for index, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise InvalidInferenceRequest(
                f"text {index} has {len(text)} characters, over the limit of {limits.max_chars}"
            )
    return texts


def requested_outputs(request: InferenceRequest) -> list[OutputRequest]:
    """Return the outputs to send, in order: those asked for, else all of them."""
    default = _flag(request.parameters, "binary_data_output", "the request")
    if request.outputs is None:
        return [OutputRequest(name, default) for name in (PROBABILITIES, LABEL)]
    names = [output.name for output in request.outputs]
    if len(set(names)) != len(names):
        raise InvalidInferenceRequest("an output is requested more than once")
    wanted = []
    for output in request.outputs:
        where = f"output '{output.name}'"
        _refuse_unsupported(output.parameters, where)
        binary = _flag(output.parameters, "binary_data", where)
        explicit = output.parameters is not None and "binary_data" in output.parameters
        wanted.append(OutputRequest(output.name, binary if explicit else default))
    return wanted


def output_tensors(
    predictions: Predictions, wanted: list[OutputRequest]
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Return the response's output objects and, in the same order, their binary chunks."""
    rows = len(predictions.best)
    probabilities = predictions.probabilities.astype(np.float32, copy=False)
    labels = [predictions.labels[int(index)] for index in predictions.best]
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in wanted:
        chunk = b""
        if output.name == PROBABILITIES:
            shape = [rows, probabilities.shape[1]]
            tensor: dict[str, Any] = {"name": PROBABILITIES, "datatype": "FP32", "shape": shape}
            if output.binary:
                chunk = encode_fp32(probabilities)
            else:
                tensor["data"] = probabilities.ravel().tolist()
        else:
            tensor = {"name": LABEL, "datatype": "BYTES", "shape": [rows]}
            if output.binary:
                chunk = encode_bytes(label.encode() for label in labels)
            else:
                tensor["data"] = labels
        if output.binary:
            tensor["parameters"] = {BINARY_SIZE: len(chunk)}
            chunks.append(chunk)
        tensors.append(tensor)
    return tensors, chunks


def _text_count(shape: list[int], limits: Limits) -> int:
    if len(shape) == 2 and shape[1] != 1:
        raise InvalidInferenceRequest(f"input shape must be [n] or [n, 1], got {shape}")
    count = shape[0]
    if count == 0:
        raise InvalidInferenceRequest("the input holds no text")
    if count > limits.max_texts:
        raise InvalidInferenceRequest(f"{count} texts exceed the limit of {limits.max_texts}")
    return count


def _json_texts(tensor: RequestInput, count: int) -> list[str]:
    data = tensor.data
    if data is None:
        raise InvalidInferenceRequest(f"input '{tensor.name}' has neither data nor {BINARY_SIZE}")
    texts: list[str] = []
    for row in data:
        if isinstance(row, str):
            texts.append(row)
        elif len(tensor.shape) == 2 and len(row) == 1:  # nested as the shape: [[t1], [t2]]
            texts.append(row[0])
        else:
            raise InvalidInferenceRequest(f"input data does not match the shape {tensor.shape}")
    if len(texts) != count:
        raise InvalidInferenceRequest(
            f"input data holds {len(texts)} texts, its shape {tensor.shape} says {count}"
        )
    return texts


def _binary_size(tensor: RequestInput) -> int | None:
    value = (tensor.parameters or {}).get(BINARY_SIZE)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInferenceRequest(f"{BINARY_SIZE} must be a non-negative integer")
    return value


def _flag(parameters: Parameters | None, name: str, where: str) -> bool:
    value = (parameters or {}).get(name, False)
    if not isinstance(value, bool):
        raise InvalidInferenceRequest(f"parameter '{name}' of {where} must be true or false")
    return value


def _refuse_unsupported(parameters: Parameters | None, where: str) -> None:
    for parameter, extension in _UNSUPPORTED.items():
        if parameter in (parameters or {}):
            raise InvalidInferenceRequest(
                f"{where}: the {extension} extension is not supported ('{parameter}')"
            )


def _utf8(element: bytes, index: int) -> str:
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInferenceRequest(f"text {index} is not valid UTF-8") from exc
