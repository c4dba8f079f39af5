"""The model bundle: the contract between training and serving.

A bundle is a directory::

    model.keras       the Keras model (custom layers registered by ``training.layers``)
    tokenizer.json    the tokenizer (``training.tokenizer``)
    metadata.json     ``BundleMetadata``: labels, sequence spec, metrics, versions, checksums

``load_bundle`` refuses a bundle that is incomplete, corrupted (checksum mismatch),
inconsistent (tokenizer ids beyond the embedding, labels vs output units) or of a format
version this code does not read, with a message that says which.

Checksums: ``metadata.json`` holds a sha256 for every other file the loader reads
(``CHECKSUMMED_FILES``); a bundle whose list is missing, lacks one of them, or names anything
but a regular file directly inside the bundle directory (``../x``, ``/dev/zero``, a symlink
leading out of the bundle) is refused before any of those files is read. ``metadata.json``
cannot hold its own checksum, so it is covered by nothing but its validation: the checksums
detect truncated or swapped model and tokenizer files, not a rewritten bundle (that needs a
signature kept outside the bundle).
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Mapping
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
# Every file load_bundle reads besides metadata.json: each must have a checksum in it.
CHECKSUMMED_FILES = (MODEL_FILE, TOKENIZER_FILE)
_SHA256_HEX = frozenset("0123456789abcdef")


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
    checksums = {name: file_sha256(directory / name) for name in CHECKSUMMED_FILES}
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

    Cheap enough for a server's master process to run before it forks workers. The checksum
    list is always checked for coverage and for names that leave the bundle;
    ``verify_checksums=False`` (tests of the checks behind it) skips only the digests.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    check_checksums(directory, metadata.checksums, verify=verify_checksums)
    try:
        return Tokenizer.load(directory / TOKENIZER_FILE)
    except TrainingError as exc:
        raise BundleError(f"model bundle {directory}: {exc}") from exc


def check_checksums(directory: Path, checksums: Mapping[str, str], *, verify: bool = True) -> None:
    """Refuse a checksum list that leaves a loaded file uncovered or names a path outside the
    bundle; then, if ``verify``, compare every listed file with its digest."""
    where = f"model bundle {directory}"
    if not checksums:
        raise BundleError(
            f"{where}: {METADATA_FILE} lists no checksums, so {', '.join(CHECKSUMMED_FILES)} "
            "cannot be verified; refusing to load it (re-save the bundle with sentiment-train)"
        )
    uncovered = [name for name in CHECKSUMMED_FILES if name not in checksums]
    if uncovered:
        raise BundleError(
            f"{where}: {METADATA_FILE} has no checksum for {', '.join(uncovered)}, which the "
            "loader reads; refusing to load it"
        )
    root = directory.resolve()
    files = {name: _bundle_file(root, name, where) for name in checksums}
    for name, expected in checksums.items():
        if len(expected) != 64 or not set(expected) <= _SHA256_HEX:
            raise BundleError(
                f"{where}: the checksum of {name} in {METADATA_FILE} is not a sha256 hex digest"
            )
    if not verify:
        return
    for name, path in files.items():
        if file_sha256(path) != checksums[name]:
            raise BundleError(
                f"{where}: {name} does not match its checksum "
                "(truncated or modified after training)"
            )


def _bundle_file(root: Path, name: str, where: str) -> Path:
    """Return the regular file ``name`` directly inside ``root`` (resolved), or refuse it."""
    if name in {"", ".", ".."} or any(char in name for char in "/\\\0"):
        raise BundleError(
            f"{where}: {METADATA_FILE} lists a checksum for {name!r}, which is not a plain file "
            "name inside the bundle directory (paths, '..' and absolute names are refused)"
        )
    try:
        resolved = (root / name).resolve(strict=True)
        mode = resolved.stat().st_mode
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise BundleError(f"{where}: cannot read {name}: {exc}") from exc
    if resolved.parent != root:
        raise BundleError(
            f"{where}: {name} is a link to {resolved}, outside the bundle directory; refusing it"
        )
    if not stat.S_ISREG(mode):
        raise BundleError(f"{where}: {name} is not a regular file; refusing it")
    return resolved


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
        # safe_mode (the default, explicit here) refuses Lambda layers and other arbitrary
        # code in the archive; pyproject.toml requires a Keras with its known bypasses fixed.
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a corrupt archive; report them all
        raise BundleError(f"cannot load Keras model {path}: {exc}") from exc


def _check_consistency(
    directory: Path, model: Any, tokenizer: Tokenizer, metadata: BundleMetadata
) -> None:
    # Every id table (embeddings, n-gram tables), also inside the member models of an
    # ensemble, must cover every id the tokenizer emits, or be fed through a LearnedVocabulary
    # that maps the ids beyond it to OOV (the frozen word vectors always see every id).
    from training.layers import FrozenWordVectors, LearnedVocabulary

    layers = _layers(model)
    clipped = min(
        (layer.size for layer in layers if isinstance(layer, LearnedVocabulary)), default=0
    )
    for table in layers:
        rows = getattr(table, "input_dim", None) or getattr(table, "vocabulary_size", None)
        if not isinstance(rows, int) or tokenizer.vocabulary_size <= rows:
            continue
        if clipped and clipped <= rows and not isinstance(table, FrozenWordVectors):
            continue
        raise BundleError(
            f"model bundle {directory} is inconsistent: the tokenizer emits ids up to "
            f"{tokenizer.vocabulary_size - 1} but the layer {table.name!r} has only "
            f"{rows} rows"
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
