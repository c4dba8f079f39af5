"""Custom Keras layers that bundles need; importing this module registers them for loading."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


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
