"""Build the Keras Embedding + recurrent classifier from a typed config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from training.errors import ConfigError

if TYPE_CHECKING:  # Keras is imported when a model is built, so CLIs start (and --help) fast
    import keras

Cell = Literal["gru", "lstm", "simple_rnn"]
Pooling = Literal["last", "max", "mean", "max_mean"]
CELLS: tuple[Cell, ...] = ("gru", "lstm", "simple_rnn")
POOLINGS: tuple[Pooling, ...] = ("last", "max", "mean", "max_mean")

_CELL_LAYERS = {"gru": "GRU", "lstm": "LSTM", "simple_rnn": "SimpleRNN"}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the classifier; every field is a `sentiment-train` option."""

    vocabulary_size: int  # ids 0..vocabulary_size-1, 0 = padding
    num_classes: int  # 2 -> one sigmoid unit, more -> softmax
    cell: Cell = "gru"
    units: int = 64  # per direction, per recurrent layer
    layers: int = 1  # stacked recurrent layers
    bidirectional: bool = True
    embedding_dim: int = 128
    pooling: Pooling = "max_mean"  # over time; "last" uses the final state only
    embedding_dropout: float = 0.2  # SpatialDropout1D: drops whole embedding channels
    dropout: float = 0.3  # before the output layer
    recurrent_dropout: float = 0.0  # > 0 disables the cuDNN kernel on GPU
    l2: float = 0.0  # weight decay on embedding, recurrent and dense kernels
    ngram_buckets: int = 0  # > 0 adds a bag-of-words-and-hashed-bigrams branch (HashedNgramBag)
    ngram_dim: int = 16
    # General-domain word vectors beside the learned embedding (training.word_vectors):
    # ids >= learned_vocabulary_size have a frozen vector only (0 = every id is learned).
    learned_vocabulary_size: int = 0
    word_vectors_dim: int = 0  # width of the frozen table; 0 = no such table
    word_vectors_projection: int = 16  # the table's vectors enter the RNN through this Dense
    word_dropout: float = 0.0  # share of tokens the learned half sees as OOV while training

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.num_classes < 2:
            raise ConfigError(f"need at least 2 classes, got {self.num_classes}")
        if min(self.vocabulary_size, self.units, self.layers, self.embedding_dim) < 1:
            raise ConfigError("vocabulary_size, units, layers and embedding_dim must be >= 1")
        if self.ngram_buckets < 0 or self.ngram_dim < 1:
            raise ConfigError("ngram_buckets must be >= 0 and ngram_dim >= 1")
        for name in ("embedding_dropout", "dropout", "recurrent_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.l2 < 0:
            raise ConfigError(f"l2 must be >= 0, got {self.l2}")
        if not 0 <= self.learned_vocabulary_size <= self.vocabulary_size:
            raise ConfigError("learned_vocabulary_size must be in [0, vocabulary_size]")
        if min(self.word_vectors_dim, self.word_vectors_projection) < 0:
            raise ConfigError("word_vectors_dim and word_vectors_projection must be >= 0")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"word_dropout must be in [0, 1), got {self.word_dropout}")

    @property
    def learned_size(self) -> int:
        """Return how many ids the learned embedding (and the n-gram bag) has rows for."""
        return self.learned_vocabulary_size or self.vocabulary_size

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-serializable dict."""
        return asdict(self)


def build_model(
    config: ModelConfig, embedding_weights: Any = None, word_vectors: Any = None
) -> keras.Model:
    """Return the uncompiled functional model: int ids (batch, time) -> class probabilities.

    ``embedding_weights`` (learned_size, embedding_dim), e.g. pre-trained word vectors,
    initializes the Embedding layer; it is fine-tuned with the rest. ``word_vectors``
    (vocabulary_size, word_vectors_dim) fills the frozen general-domain table.
    """
    import keras

    from training.layers import HashedNgramBag

    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    learned_ids = token_ids
    if config.learned_size < config.vocabulary_size or config.word_dropout > 0:
        from training.layers import LearnedVocabulary

        learned_ids = LearnedVocabulary(
            config.learned_size, dropout=config.word_dropout, name="learned_vocabulary"
        )(token_ids)
    x = keras.layers.Embedding(
        config.learned_size,
        config.embedding_dim,
        mask_zero=True,  # padding id 0 is skipped by the RNN and the pooling
        embeddings_regularizer=regularizer,
        name="embedding",
    )(learned_ids)
    if config.word_vectors_dim:
        x = keras.layers.Concatenate(name="embeddings")([x, _word_vectors(config, token_ids)])
    if config.embedding_dropout > 0:
        x = keras.layers.SpatialDropout1D(config.embedding_dropout, name="embedding_dropout")(x)
    for depth in range(config.layers):
        is_last = depth == config.layers - 1
        x = _recurrent_layer(
            config,
            return_sequences=not is_last or config.pooling != "last",
            regularizer=regularizer,
            name=f"rnn_{depth + 1}",
        )(x)
    x = _pool(x, config.pooling)
    if config.ngram_buckets:
        bag = HashedNgramBag(
            config.learned_size,
            config.ngram_buckets,
            config.ngram_dim,
            embeddings_regularizer=regularizer,
            name="ngram_bag",
        )(learned_ids)
        x = keras.layers.Concatenate(name="rnn_and_ngrams")([x, bag])
    if config.dropout > 0:
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    binary = config.num_classes == 2
    probabilities = keras.layers.Dense(
        1 if binary else config.num_classes,
        activation="sigmoid" if binary else "softmax",
        kernel_regularizer=regularizer,
        dtype="float32",  # keep probabilities in float32 even under mixed precision
        name="probabilities",
    )(x)
    model = keras.Model(token_ids, probabilities, name=f"sentiment_{config.cell}")
    if embedding_weights is not None:
        _set_embedding(model, embedding_weights, config)
    if config.word_vectors_dim:
        _set_word_vectors(model, word_vectors, config)
    return model


def _word_vectors(config: ModelConfig, token_ids: Any) -> Any:
    import keras

    from training.layers import FrozenWordVectors

    vectors = FrozenWordVectors(
        config.vocabulary_size, config.word_vectors_dim, name="word_vectors"
    )(token_ids)
    if not config.word_vectors_projection:
        return vectors
    return keras.layers.Dense(config.word_vectors_projection, name="word_vectors_projection")(
        vectors
    )


def _set_embedding(model: keras.Model, weights: Any, config: ModelConfig) -> None:
    import numpy as np

    matrix = np.asarray(weights, dtype="float32")
    expected = (config.learned_size, config.embedding_dim)
    if matrix.shape != expected:
        raise ConfigError(f"embedding weights have shape {matrix.shape}, expected {expected}")
    # Set after building (not as an initializer), so the matrix never lands in the config.
    model.get_layer("embedding").set_weights([matrix])


def _set_word_vectors(model: keras.Model, table: Any, config: ModelConfig) -> None:
    import numpy as np

    from training.word_vectors import quantize

    if table is None:
        raise ConfigError("word_vectors_dim is set but no word vector table was given")
    matrix = np.asarray(table, dtype="float32")
    expected = (config.vocabulary_size, config.word_vectors_dim)
    if matrix.shape != expected:
        raise ConfigError(f"word vectors have shape {matrix.shape}, expected {expected}")
    codes, scales = quantize(matrix)
    model.get_layer("word_vectors").set_weights([codes, scales])


def _recurrent_layer(
    config: ModelConfig,
    *,
    return_sequences: bool,
    regularizer: keras.regularizers.Regularizer | None,
    name: str,
) -> keras.layers.Layer:
    import keras

    # Defaults (tanh / sigmoid, no recurrent dropout, unroll=False, reset_after=True) keep
    # GRU and LSTM eligible for the cuDNN kernel on GPU.
    layer = getattr(keras.layers, _CELL_LAYERS[config.cell])(
        config.units,
        return_sequences=return_sequences,
        recurrent_dropout=config.recurrent_dropout,
        kernel_regularizer=regularizer,
        recurrent_regularizer=regularizer,
    )
    if config.bidirectional:
        return keras.layers.Bidirectional(layer, name=name)
    layer.name = name
    return layer


def _pool(x: Any, pooling: Pooling) -> Any:
    import keras

    from training.layers import MaskedGlobalMaxPooling1D

    if pooling == "last":
        return x
    if pooling == "max":
        return MaskedGlobalMaxPooling1D(name="max_pool")(x)
    if pooling == "mean":
        return keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)
    return keras.layers.Concatenate(name="max_mean_pool")(
        [
            MaskedGlobalMaxPooling1D(name="max_pool")(x),
            keras.layers.GlobalAveragePooling1D(name="mean_pool")(x),
        ]
    )


def folded_config(config: ModelConfig) -> ModelConfig:
    """Return the config of ``config``'s model once ``fold_word_vectors`` has run on it."""
    if not (config.word_vectors_dim and config.word_vectors_projection):
        return config
    return replace(
        config, word_vectors_dim=config.word_vectors_projection, word_vectors_projection=0
    )


def fold_word_vectors(model: keras.Model, config: ModelConfig) -> keras.Model:
    """Return ``model`` with its frozen vectors already passed through their trained Dense.

    The Dense is linear and sees nothing but the frozen table, so ``table @ W + b`` is a table
    too: serving gathers 16 numbers per token instead of dequantizing 50 and multiplying, and
    the bundle is 2 MB smaller (the one-text latency barely moved: docs/model-quality.md). The
    folded table is stored as int8 like the original; scores move by the rounding only.
    """
    served = folded_config(config)
    if served is config:
        return model
    codes, scales = model.get_layer("word_vectors").get_weights()
    kernel, bias = model.get_layer("word_vectors_projection").get_weights()
    table = (codes.astype("float32") * scales[:, None]) @ kernel + bias
    table[0] = 0.0  # padding stays zero; it is masked anyway
    folded = build_model(served, word_vectors=table)
    for layer in folded.layers:
        if layer.weights and layer.name != "word_vectors":
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return folded
