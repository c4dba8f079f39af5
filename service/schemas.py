"""Request and response models (pydantic): validation and the OpenAPI document share them.

Limits (texts per request, characters per text) come from Settings through the validation
context, so they are configurable without redefining the models.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)


class Limits(BaseModel):
    """Per-request limits, taken from Settings."""

    max_texts: int
    max_chars: int


def _check_limits(texts: list[str], info: ValidationInfo) -> None:
    """Raise if ``texts`` exceed the limits in the validation context (if any)."""
    limits = (info.context or {}).get("limits")
    if not isinstance(limits, Limits):
        return
    if len(texts) > limits.max_texts:
        raise ValueError(f"{len(texts)} texts exceed the limit of {limits.max_texts}")
    for index, text in enumerate(texts):
        if len(text) > limits.max_chars:
            raise ValueError(
                f"text {index} has {len(text)} characters, over the limit of {limits.max_chars}"
            )


class PredictRequest(BaseModel):
    """``POST /predict``: one ``text`` or a list of ``texts`` (not both)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # a number is not a text: no silent coercion
        json_schema_extra={"examples": [{"texts": ["A wonderful film.", "Dull and too long."]}]},
    )

    text: str | None = Field(None, description="One text to classify.")
    texts: list[str] | None = Field(
        None, min_length=1, description="Texts to classify; predictions come back in order."
    )

    @field_validator("text")
    @classmethod
    def _text_limits(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is not None:
            _check_limits([text], info)
        return text

    @field_validator("texts")
    @classmethod
    def _texts_limits(cls, texts: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if texts is not None:
            _check_limits(texts, info)
        return texts

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def all_texts(self) -> list[str]:
        """Return the texts to classify."""
        return self.texts if self.texts is not None else [self.text or ""]


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str


class Prediction(BaseModel):
    """One text's prediction."""

    label: str = Field(description="The most probable label.")
    score: float = Field(ge=0, le=1, description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Probability of every label.")


class PredictResponse(BaseModel):
    """``POST /predict`` response: one prediction per input text, in order."""

    model_config = ConfigDict(protected_namespaces=())

    model: ModelRef
    predictions: list[Prediction]


class TFServingPredictRequest(BaseModel):
    """``POST /v1/models/{name}:predict``, TensorFlow Serving's row format."""

    model_config = ConfigDict(extra="forbid", strict=True)

    instances: list[str] = Field(min_length=1, description="Texts to classify.")
    signature_name: str | None = Field(None, description="Accepted and ignored (one signature).")

    @field_validator("instances")
    @classmethod
    def _limits(cls, instances: list[str], info: ValidationInfo) -> list[str]:
        _check_limits(instances, info)
        return instances


class TFServingPredictResponse(BaseModel):
    """The model's output vector per text (sigmoid: ``[p_positive]``; softmax: all classes)."""

    predictions: list[list[float]]


class ErrorDetail(BaseModel):
    """An error."""

    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`.")
    message: str
    details: Any = Field(None, description="Field paths and reasons for validation errors.")


class ErrorResponse(BaseModel):
    """Every error of the service's own routes."""

    error: ErrorDetail


class TFServingError(BaseModel):
    """Errors of the TensorFlow Serving routes keep that server's shape."""

    error: str


class HealthResponse(BaseModel):
    """Liveness and readiness."""

    status: str
    model: ModelRef | None = None
