import numbers

import keras
import numpy as np
from keras import ops

from keras_bioact import mixture_candidates
from keras_bioact.errors import BioactError
from keras_bioact.layers.bru import BRU
from keras_bioact.layers.gamma_activation import GammaActivation

_HALF = ("float16", "bfloat16")
_MASKED = -1e9  # the logit of a removed candidate: exp(-1e9 - max) is exactly 0 in float32
_LAYERS = {"Activation": keras.layers.Activation, "GammaActivation": GammaActivation, "BRU": BRU}


__all__ = ["MixtureActivation", "mixture", "mixture_weights"]


def mixture_weights(logits, active, temperature=1.0):
    """`softmax(where(active > 0.5, logits / temperature, -1e9))`, float32; the removed
    candidates (`active == 0`) get weight exactly 0 and no gradient."""
    logits = ops.cast(logits, "float32")
    z = ops.where(ops.convert_to_tensor(active) > 0.5, logits * (1.0 / temperature), _MASKED)
    e = ops.exp(z - ops.max(z))  # softmax, written out: also for a single candidate
    return e / ops.sum(e)


def mixture(x, logits, active, candidates, temperature=1.0):
    """The mixture activation `sum_i mixture_weights(logits, active, temperature)[i] * f_i(x)`
    over the named `candidates` (`keras_bioact.mixture_candidates`), with `keras.ops`. Half
    precision and integer inputs are computed in float32 (the result is float32 then)."""
    x = ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in _HALF or "int" in dtype or dtype == "bool":
        x = ops.cast(x, "float32")
    weights = ops.cast(mixture_weights(logits, active, temperature), x.dtype)
    y = None
    for i, name in enumerate(candidates):
        term = weights[i] * mixture_candidates.CANDIDATES[name].fn(x)
        y = term if y is None else y + term
    return y


@keras.saving.register_keras_serializable(package="keras_bioact")
class MixtureActivation(keras.layers.Layer):
    """A learned softmax mixture of candidate activations, one mixture per layer (activation
    site), after the gradient-based activation search of Strack, Safari & Hutter (2024),
    written from the paper's description.

    Formula:
    ```python
    w = softmax(where(active, logits / temperature, -1e9))
    f(x) = sum_i w[i] * candidate_i(x)
    ```
    `logits` (shape `(len(candidates),)`, trainable, the "architecture" weights) and `active`
    (same shape, non-trainable, 1 for a remaining candidate, 0 for a removed one) are the
    layer's two variables; every element of the input shares them. The candidates are named
    from the table `keras_bioact.mixture_candidates.CANDIDATES` (Keras built-ins such as
    `"relu"`, `"gelu"`, `"silu"`, `"identity"`, and fixed gamma/ERU/ORU shapes).

    Warm start: with `warm_start="gelu"` (the default) the GELU entry starts with softmax
    weight `warm_weight` (0.9) and the others share the rest equally, so the layer starts
    close to GELU; `warm_start=None` starts uniform.

    Progressive shrinking: `shrink(keep)` removes (masks) the remaining candidates of lowest
    weight until `keep` remain; a removed candidate has weight exactly 0 and its logit gets
    no gradient. `chosen` names the candidate of highest weight, `chosen_layer()` builds it as
    a plain layer (what `keras_bioact.search.mixture.discretize` puts in the mixture's place).

    Bounded outputs: every candidate of the table grows at most like `|x| + 1`, so the
    mixture is finite (value and gradient) for every finite input without clipping. Under
    mixed precision the variables are float32 and the mixture is computed in float32 for
    float16/bfloat16 inputs; the output has the compute dtype.

    Args:
        candidates: names of the candidate activations (at least one, no repeats), from
            `keras_bioact.mixture_candidates.names()`. Default: identity, relu, gelu, silu,
            elu, tanh, softplus, sigmoid.
        warm_start: the candidate that starts with weight `warm_weight`, or None (uniform).
            Default `"gelu"`.
        warm_weight: the warm-start candidate's initial weight, in (0, 1). Default 0.9.
        temperature: softmax temperature, in [0.01, 100]. Default 1.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(
        self,
        candidates=mixture_candidates.DEFAULT_CANDIDATES,
        warm_start="gelu",
        warm_weight=0.9,
        temperature=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        legal = mixture_candidates.names()
        if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)) or not candidates:
            raise BioactError(
                f"{name}: `candidates` must be a non-empty list of names from {legal}, got {candidates!r}."
            )
        for c in candidates:
            if not isinstance(c, str) or c not in legal:
                raise BioactError(f"{name}: unknown candidate {c!r} in `candidates`; legal: {legal}.")
        if len(set(candidates)) != len(candidates):
            raise BioactError(f"{name}: `candidates` repeats a name: {list(candidates)}.")
        if warm_start is not None and warm_start not in candidates:
            raise BioactError(
                f"{name}: `warm_start` must be None or one of the candidates "
                f"{list(candidates)}, got {warm_start!r}."
            )
        if (
            isinstance(warm_weight, bool)
            or not isinstance(warm_weight, numbers.Real)
            or not 0.0 < warm_weight < 1.0
        ):
            raise BioactError(f"{name}: `warm_weight` must be a number in (0, 1), got {warm_weight!r}.")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, numbers.Real)
            or not 0.01 <= temperature <= 100.0
        ):
            raise BioactError(f"{name}: `temperature` must be a number in [0.01, 100], got {temperature!r}.")
        self.candidates = tuple(candidates)
        self.warm_start = warm_start
        self.warm_weight = float(warm_weight)
        self.temperature = float(temperature)
        self.supports_masking = True

    def initial_logits(self):
        """The logits the layer starts with (NumPy): `temperature * log(w0)` of the warm start."""
        k = len(self.candidates)
        if self.warm_start is None or k == 1:
            return np.zeros(k, dtype="float32")
        w = np.full(k, (1.0 - self.warm_weight) / (k - 1))
        w[self.candidates.index(self.warm_start)] = self.warm_weight
        return (self.temperature * np.log(w)).astype("float32")

    def build(self, input_shape):
        k = len(self.candidates)
        start = self.initial_logits()
        self.logits = self.add_weight(
            shape=(k,),
            name="logits",
            initializer=lambda shape, dtype=None: ops.cast(ops.convert_to_tensor(start), dtype or "float32"),
            trainable=True,
            autocast=False,
        )
        self.active = self.add_weight(
            shape=(k,), name="active", initializer="ones", trainable=False, autocast=False
        )

    def candidate_weights(self):
        """The mixture weights, a float32 tensor of shape `(len(candidates),)` summing to 1."""
        return mixture_weights(self.logits, self.active, self.temperature)

    def call(self, inputs):
        y = mixture(inputs, self.logits, self.active, self.candidates, self.temperature)
        return ops.cast(y, self.compute_dtype)

    # ------------------------------------------------------------------ shrinking, discretizing
    def weights_numpy(self):
        """The mixture weights as a float64 NumPy array."""
        return np.asarray(ops.convert_to_numpy(self.candidate_weights()), dtype="float64")

    @property
    def remaining(self):
        """Names of the candidates not yet removed, in `candidates` order."""
        mask = np.asarray(ops.convert_to_numpy(self.active))
        return tuple(c for c, m in zip(self.candidates, mask, strict=True) if m > 0.5)

    @property
    def chosen(self):
        """The remaining candidate of highest weight (the first one on a tie)."""
        weights = self.weights_numpy()
        mask = np.asarray(ops.convert_to_numpy(self.active)) > 0.5
        return self.candidates[int(np.argmax(np.where(mask, weights, -1.0)))]

    def shrink(self, keep):
        """Remove the remaining candidates of lowest weight until `keep` (>= 1) remain (ties: the
        later one goes first); returns the names removed. Removing nothing is fine."""
        if isinstance(keep, bool) or not isinstance(keep, numbers.Integral) or keep < 1:
            raise BioactError(f"{type(self).__name__}.shrink: `keep` must be an integer >= 1, got {keep!r}.")
        mask = np.asarray(ops.convert_to_numpy(self.active)) > 0.5
        weights = self.weights_numpy()
        order = [i for i in np.argsort(-weights, kind="stable") if mask[i]]
        removed = order[int(keep) :]
        for i in removed:
            mask[i] = False
        self.active.assign(mask.astype("float32"))
        return tuple(self.candidates[i] for i in sorted(removed))

    def chosen_layer(self, name=None):
        """A new plain layer computing the `chosen` candidate (fixed, no mixture)."""
        cls, kwargs = mixture_candidates.CANDIDATES[self.chosen].layer
        return _LAYERS[cls](**dict(kwargs), name=name, dtype=self.dtype_policy)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "candidates": list(self.candidates),
                "warm_start": self.warm_start,
                "warm_weight": self.warm_weight,
                "temperature": self.temperature,
            }
        )
        return config
