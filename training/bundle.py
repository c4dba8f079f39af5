"""The model bundle: the contract between training and serving.

A bundle is a directory::

    model.keras       the Keras model (custom layers registered by ``training.layers``)
    tokenizer.json    the tokenizer (``training.tokenizer``)
    metadata.json     ``BundleMetadata``: labels, sequence spec, metrics, versions, checksums

``load_bundle`` refuses a bundle that is incomplete, corrupted (checksum mismatch),
inconsistent (tokenizer ids beyond the embedding, labels vs output units) or of a format
version this code does not read, with a message that says which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import BundleError, TrainingError
from training.preprocessing import SequenceSpec, Side, TextPreprocessor
from training.tokenizer import Tokenizer

FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
TOKENIZER_FILE = "tokenizer.json"
METADATA_FILE = "metadata.json"


class BundleMetadata(BaseModel):
    """Everything serving needs to know about a model, written as ``metadata.json``."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format_version: int
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    created_at: str
    labels: list[str] = Field(min_length=2)
    maxlen: int = Field(ge=1)
    padding: Side
    truncating: Side
    vocabulary_size: int = Field(ge=2)
    architecture: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    checksums: dict[str, str] = Field(default_factory=dict)  # file name -> sha256 hex

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels

    @property
    def sequence_spec(self) -> SequenceSpec:
        """Return how texts are padded and truncated for this model."""
        return SequenceSpec(self.maxlen, self.padding, self.truncating)


@dataclass
class Bundle:
    """A loaded, validated bundle: the model plus the exact preprocessing it was trained with."""

    path: Path
    model: Any  # keras.Model; typed loosely so this module does not import Keras at import time
    preprocessor: TextPreprocessor
    metadata: BundleMetadata


def new_version() -> str:
    """Return a sortable integer version from the current UTC time (TF Serving style)."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def file_sha256(path: Path) -> str:
    """Return the sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_bundle(
    directory: str | Path, model: Any, tokenizer: Tokenizer, metadata: dict[str, Any]
) -> BundleMetadata:
    """Write model, tokenizer and metadata (with checksums) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _serving_copy(model).save(directory / MODEL_FILE)
    tokenizer.save(directory / TOKENIZER_FILE)
    checksums = {name: file_sha256(directory / name) for name in (MODEL_FILE, TOKENIZER_FILE)}
    try:
        validated = BundleMetadata.model_validate(
            {**metadata, "format_version": FORMAT_VERSION, "checksums": checksums}
        )
    except ValidationError as exc:
        raise BundleError(f"invalid bundle metadata: {exc}") from exc
    (directory / METADATA_FILE).write_text(
        json.dumps(validated.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return validated


def _serving_copy(model: Any) -> Any:
    """Return an uncompiled twin of ``model``: same weights, no optimizer state (~3x smaller)."""
    import keras

    # clone_model would carry the optimizer over; a model rebuilt from its config does not.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def read_metadata(directory: str | Path) -> BundleMetadata:
    """Read and validate ``metadata.json`` alone (cheap: no TensorFlow)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"model bundle {directory} does not exist or is not a directory")
    missing = [
        n for n in (MODEL_FILE, TOKENIZER_FILE, METADATA_FILE) if not (directory / n).is_file()
    ]
    if missing:
        raise BundleError(f"model bundle {directory} is incomplete: missing {', '.join(missing)}")
    try:
        raw = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"cannot read {directory / METADATA_FILE}: {exc}") from exc
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(
            f"model bundle {directory} has format version {version!r}; "
            f"this build reads version {FORMAT_VERSION}"
        )
    try:
        return BundleMetadata.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(f"invalid {directory / METADATA_FILE}: {exc}") from exc


def check_bundle_files(directory: str | Path, *, verify_checksums: bool = True) -> Tokenizer:
    """Validate metadata, checksums and tokenizer without TensorFlow; return the tokenizer.

    Cheap enough for a server's master process to run before it forks workers.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    if verify_checksums:
        for name, expected in metadata.checksums.items():
            if file_sha256(directory / name) != expected:
                raise BundleError(
                    f"model bundle {directory}: {name} does not match its checksum "
                    "(truncated or modified after training)"
                )
    try:
        return Tokenizer.load(directory / TOKENIZER_FILE)
    except TrainingError as exc:
        raise BundleError(f"model bundle {directory}: {exc}") from exc


def load_bundle(directory: str | Path, *, verify_checksums: bool = True) -> Bundle:
    """Load and validate a bundle; raise ``BundleError`` rather than serve a wrong model."""
    directory = Path(directory)
    tokenizer = check_bundle_files(directory, verify_checksums=verify_checksums)
    metadata = read_metadata(directory)
    model = _load_keras_model(directory / MODEL_FILE)
    _check_consistency(directory, model, tokenizer, metadata)
    return Bundle(directory, model, TextPreprocessor(tokenizer, metadata.sequence_spec), metadata)


def _load_keras_model(path: Path) -> Any:
    import keras

    import training.layers  # noqa: F401  # registers the custom layers for deserialization

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt archive; report them all
        raise BundleError(f"cannot load Keras model {path}: {exc}") from exc


def _check_consistency(
    directory: Path, model: Any, tokenizer: Tokenizer, metadata: BundleMetadata
) -> None:
    # Every embedding, also inside the member models of an ensemble, must cover every id.
    for embedding in _layers(model):
        if hasattr(embedding, "input_dim") and tokenizer.vocabulary_size > embedding.input_dim:
            raise BundleError(
                f"model bundle {directory} is inconsistent: the tokenizer emits ids up to "
                f"{tokenizer.vocabulary_size - 1} but the embedding has only "
                f"{embedding.input_dim} rows"
            )
    if tokenizer.vocabulary_size != metadata.vocabulary_size:
        raise BundleError(
            f"model bundle {directory} is inconsistent: metadata says vocabulary_size "
            f"{metadata.vocabulary_size}, the tokenizer has {tokenizer.vocabulary_size}"
        )
    units = int(model.output_shape[-1])
    expected = 1 if len(metadata.labels) == 2 else len(metadata.labels)
    if units != expected:
        raise BundleError(
            f"model bundle {directory} is inconsistent: {len(metadata.labels)} labels need "
            f"{expected} output unit(s), the model has {units}"
        )


def _layers(model: Any) -> list[Any]:
    """Return the layers of ``model``, those of nested models included."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_layers(layer))
    return found
