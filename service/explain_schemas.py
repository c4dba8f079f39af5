"""Request and response models of the explain routes (``/explain``, ``/v1/models/<name>:explain``).

Requests reuse the predict models; only the limits differ (``explain_max_texts_per_request``,
through the validation context, as for ``/predict``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import ModelRef, PredictRequest, TFServingPredictRequest


class ExplainRequest(PredictRequest):
    """``POST /explain``: one ``text`` or a list of ``texts`` (not both), fewer than /predict."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"text": "A wonderful film, but far too long."}]},
    )


class KServeExplainRequest(TFServingPredictRequest):
    """``POST /v1/models/{name}:explain``, KServe's V1 shape (``instances``: texts)."""


class ExplainedToken(BaseModel):
    """One token the model saw, where it is in the original text, and what it contributed."""

    token: str = Field(description="The token as the model's tokenizer produced it.")
    start: int = Field(ge=0, description="Offset of its first character in the original text.")
    end: int = Field(ge=0, description="Offset after its last character (a Python slice).")
    attribution: float = Field(
        description="Predicted label's probability minus its probability without this token."
    )
    attributions: dict[str, float] | None = Field(
        None, description="The same toward every label (multi-class bundles only)."
    )


class ExplainMethod(BaseModel):
    """How the attributions were computed."""

    name: str = Field(description="`occlusion`: each token deleted in turn.")
    parameters: dict[str, str]


class Explanation(BaseModel):
    """One text's prediction and the attribution of each of its tokens, in text order."""

    label: str
    score: float = Field(ge=0, le=1)
    probabilities: dict[str, float]
    tokens: list[ExplainedToken]


class ExplainResponse(BaseModel):
    """``POST /explain`` response: one explanation per input text, in order."""

    model_config = ConfigDict(protected_namespaces=())

    model: ModelRef
    method: ExplainMethod
    explanations: list[Explanation]


class KServeExplainResponse(BaseModel):
    """``POST /v1/models/{name}:explain`` response."""

    method: ExplainMethod
    explanations: list[Explanation]
