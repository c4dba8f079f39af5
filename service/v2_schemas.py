"""Open Inference Protocol (V2) request and response models: validation and OpenAPI share them.

Only what this model speaks is valid: one BYTES input of texts, shape ``[n]`` or ``[n, 1]``, and
the outputs ``probabilities`` and ``label``. Unknown top-level and tensor fields are ignored,
not refused: clients add their own (kserve's sends ``model_name``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

INPUT_NAME = "text"
PROBABILITIES = "probabilities"
LABEL = "label"
OutputName = Literal["probabilities", "label"]

# A parameter value is a string, number or boolean (never null, list or object).
ParameterValue = StrictBool | StrictInt | StrictFloat | StrictStr
Parameters = dict[str, ParameterValue]
Dimension = Annotated[StrictInt, Field(ge=0)]


class RequestInput(BaseModel):
    """The input tensor: the texts to classify."""

    model_config = ConfigDict(extra="ignore")

    name: Literal["text"]
    datatype: Literal["BYTES"]
    shape: list[Dimension] = Field(
        min_length=1, max_length=2, description="`[n]` or `[n, 1]`: n texts."
    )
    parameters: Parameters | None = Field(
        None, description="`binary_data_size`: the texts follow the JSON header as binary."
    )
    data: list[StrictStr] | list[list[StrictStr]] | None = Field(
        None, description="The texts, flat or nested as the shape; absent with binary data."
    )


class RequestOutput(BaseModel):
    """An output the client wants, and whether as binary data."""

    model_config = ConfigDict(extra="ignore")

    name: OutputName
    parameters: Parameters | None = Field(
        None, description="`binary_data`: return this output as binary data."
    )


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}[/versions/{version}]/infer``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "text",
                            "datatype": "BYTES",
                            "shape": [2],
                            "data": ["A wonderful film.", "Dull and too long."],
                        }
                    ],
                    "outputs": [{"name": "label"}, {"name": "probabilities"}],
                }
            ]
        },
    )

    id: StrictStr | None = Field(None, description="Echoed in the response.")
    parameters: Parameters | None = Field(
        None, description="`binary_data_output`: return every output as binary data."
    )
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="Outputs to return (default: all), each at most once."
    )


class ResponseOutput(BaseModel):
    """An output tensor: JSON ``data``, or ``binary_data_size`` bytes after the header."""

    name: str
    datatype: str
    shape: list[int]
    parameters: Parameters | None = None
    data: list[float] | list[str] | None = None


class InferenceResponse(BaseModel):
    """The requested outputs, in the order asked for."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    """A tensor's name, datatype and shape (``-1``: any size)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    """``GET /v2/models/{name}[/versions/{version}]``."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadataResponse(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class LiveResponse(BaseModel):
    """``GET /v2/health/live``."""

    live: bool


class ReadyResponse(BaseModel):
    """``GET /v2/health/ready`` and ``GET /v2/models/{name}/ready``."""

    ready: bool


class V2Error(BaseModel):
    """Every V2 error: ``{"error": "<message>"}``."""

    error: str
