"""Custom Keras layers that bundles need; importing this module registers them for loading."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from training.nbsvm import BIGRAM_HASH_MULTIPLIER


@keras.saving.register_keras_serializable(package="sentiment")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over time that ignores masked (padded) steps.

    Keras' GlobalMaxPooling1D drops the mask, so padded zeros enter the max and the output
    changes with the pad length; this layer keeps scores identical whatever the batch is
    padded to.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), axis=-1)
        # A large negative (not -inf) keeps an all-masked row finite instead of -inf/NaN.
        lowest = ops.cast(-1e9, inputs.dtype)
        return ops.max(ops.where(keep, inputs, lowest), axis=1)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[2])


def hashed_bigrams(token_ids: Any, vocabulary_size: int, buckets: int) -> tuple[Any, Any, Any]:
    """Return (int32 ids, bigram feature ids, which bigrams join two real tokens).

    Bigram ``(left, right)`` becomes row ``vocabulary_size + (left * M + right) mod buckets``
    (M odd: spreads the pairs across the buckets), the hash ``training.nbsvm.bigram_ids``
    computes in numpy; a bigram touching padding (id 0) is not real.
    """
    ids = ops.cast(token_ids, "int32")
    left, right = ids[:, :-1], ids[:, 1:]
    pair = ops.cast(left, "int64") * BIGRAM_HASH_MULTIPLIER + ops.cast(right, "int64")
    bigrams = ops.cast(ops.mod(pair, buckets), "int32") + vocabulary_size
    return ids, bigrams, (left > 0) & (right > 0)


@keras.saving.register_keras_serializable(package="sentiment")
class HashedNgramBag(keras.layers.Layer):
    """fastText-style bag of words and word bigrams: the mean of their embeddings.

    Input: the same padded token ids the RNN reads. Each word id keeps its own row; each
    bigram of two real tokens is hashed into one of ``buckets`` further rows. Padding (id 0)
    and bigrams that touch it are left out of the mean, so, as for the masked RNN, the output
    does not depend on how far a batch is padded. Word order beyond pairs is the RNN's job;
    this branch gives the model the cheap, strong bigram evidence linear models live on.
    """

    def __init__(
        self,
        vocabulary_size: int,
        buckets: int,
        output_dim: int,
        embeddings_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.buckets = buckets
        self.output_dim = output_dim
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocabulary_size + self.buckets, self.output_dim),
            initializer=keras.initializers.RandomUniform(-0.05, 0.05),
            regularizer=self.embeddings_regularizer,
        )

    def call(self, token_ids: Any) -> Any:
        ids, bigrams, real_bigrams = hashed_bigrams(token_ids, self.vocabulary_size, self.buckets)
        rows = ops.concatenate([ids, bigrams], axis=1)
        keep = ops.concatenate([ids > 0, real_bigrams], axis=1)
        weights = ops.expand_dims(ops.cast(keep, self.compute_dtype), axis=-1)
        vectors = ops.take(self.embeddings, rows, axis=0)
        total = ops.sum(vectors * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "buckets": self.buckets,
            "output_dim": self.output_dim,
            "embeddings_regularizer": keras.regularizers.serialize(self.embeddings_regularizer),
        }


@keras.saving.register_keras_serializable(package="sentiment")
class NgramLogit(keras.layers.Layer):
    """The NB-SVM branch: a fixed linear model over which words and hashed bigrams occur.

    One weight per word id and per bigram bucket (``training.nbsvm`` fits them, NB ratios folded
    in); the logit is the bias plus the weights of the *distinct* features of the text
    (binarized, as NBSVM). Distinct features come from sorting each row's feature ids and
    keeping the first of each run, so padding (left out) never changes the result and XLA can
    compile it. Not trainable: its weights are fitted outside Keras.
    """

    def __init__(self, vocabulary_size: int, buckets: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.buckets = buckets
        self.trainable = False

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(self.vocabulary_size + self.buckets,),
            initializer="zeros",
            trainable=False,
        )
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros", trainable=False)

    def call(self, token_ids: Any) -> Any:
        ids, bigrams, real_bigrams = hashed_bigrams(token_ids, self.vocabulary_size, self.buckets)
        absent = ops.cast(-1, "int32")
        features = ops.concatenate(
            [ops.where(ids > 0, ids, absent), ops.where(real_bigrams, bigrams, absent)], axis=1
        )
        ordered = ops.sort(features, axis=1)
        first = ops.concatenate(
            [ops.ones_like(ordered[:, :1], dtype="bool"), ordered[:, 1:] != ordered[:, :-1]],
            axis=1,
        )
        keep = ops.cast(first & (ordered >= 0), self.compute_dtype)
        weights = ops.take(self.coefficients, ops.maximum(ordered, 0), axis=0)
        return ops.sum(weights * keep, axis=1, keepdims=True) + self.bias

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "buckets": self.buckets,
        }


@keras.saving.register_keras_serializable(package="sentiment")
class LogitBlend(keras.layers.Layer):
    """sigmoid(logit(p) + weight * evidence): adds a branch's logit to a sigmoid model's output."""

    # Keeps logit(p) finite for p at 0 or 1.
    _EPSILON = 1e-7

    def __init__(self, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: Any) -> Any:
        probability, evidence = inputs
        p = ops.clip(probability, self._EPSILON, 1.0 - self._EPSILON)
        return ops.sigmoid(ops.log(p) - ops.log1p(-p) + self.weight * evidence)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="sentiment")
class LearnedVocabulary(keras.layers.Layer):
    """The ids the learned embedding has rows for: ids ``>= size`` become ``oov_id``.

    Words added to the vocabulary for their general-domain vectors only
    (``training.word_vectors``) share the learned OOV row here; ``FrozenWordVectors`` tells
    them apart. While training, each real token also becomes ``oov_id`` with probability
    ``dropout`` (word dropout on this half only), so the model learns to read a word from its
    general vector alone, as it must for a word the training texts never had. Padding (0)
    stays 0, so the embedding's mask is the same.
    """

    def __init__(
        self,
        size: int,
        oov_id: int = 1,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.oov_id = oov_id
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids: Any, training: bool | None = None) -> Any:
        ids = ops.cast(token_ids, "int32")
        oov = ops.cast(self.oov_id, "int32")
        ids = ops.where(ids >= self.size, oov, ids)
        if training and self.dropout > 0:
            drop = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) < self.dropout
            ids = ops.where(drop & (ids > 0), oov, ids)
        return ids

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": self.size,
            "oov_id": self.oov_id,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="sentiment")
class FrozenWordVectors(keras.layers.Layer):
    """A fixed table of general-domain word vectors, stored as int8 codes and a scale per row.

    ``training.word_vectors.quantize`` fills it; a quarter of float32's size, so a larger
    vocabulary fits in the bundle. Not trainable: fine-tuning would move the words the
    training texts have away from the ones they lack, and the vectors of the latter are the
    point. Masks padding (id 0) like ``Embedding(mask_zero=True)``.
    """

    def __init__(self, vocabulary_size: int, output_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.output_dim = output_dim
        self.trainable = False
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.codes = self.add_weight(
            name="codes",
            shape=(self.vocabulary_size, self.output_dim),
            initializer="zeros",
            dtype="int8",
            trainable=False,
        )
        self.scales = self.add_weight(
            name="scales", shape=(self.vocabulary_size,), initializer="zeros", trainable=False
        )

    def call(self, token_ids: Any) -> Any:
        ids = ops.cast(token_ids, "int32")
        codes = ops.cast(ops.take(self.codes, ids, axis=0), self.compute_dtype)
        return codes * ops.expand_dims(ops.take(self.scales, ids, axis=0), axis=-1)

    def compute_mask(self, token_ids: Any, mask: Any = None) -> Any:
        return ops.not_equal(token_ids, 0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape, self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "output_dim": self.output_dim,
        }
