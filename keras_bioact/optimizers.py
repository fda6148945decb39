"""A separate learning rate for activation parameters.

Activation parameters (a gamma's gain `n` and saturation `s`, a BRU's radix `r`) are few,
shared by many units, and often want a different learning rate than the weights.
`ActivationLRMultiplier` wraps any Keras optimizer and multiplies the *update* of the
activation parameters by a factor:

```python
opt = keras_bioact.optimizers.ActivationLRMultiplier(keras.optimizers.Adam(1e-3), 10.0, model=model)
model.compile(optimizer=opt, loss=...)
```

How it works: the wrapped optimizer makes its usual step on all variables; then each
activation parameter `p` is set to `p_old + multiplier * (p_new - p_old)` and its constraint
(e.g. `n >= 0.01`) is applied again. This is exactly "learning rate times the multiplier"
for every optimizer whose step is proportional to its learning rate (SGD with or without
momentum, Adam, AdamW, RMSprop, Adagrad, Nadam, Lion, ...), learning-rate schedules
included, and works on the TensorFlow, JAX and PyTorch backends with `model.compile`/`fit`
(plain Keras ops and variable assignments; JAX's stateless training step included).
Scaling the *gradients* instead would not do it: Adam-type optimizers normalise the gradient,
so a scaled gradient gives (almost) the same step.

The optimizer state (moments) is the wrapped optimizer's own; `learning_rate`,
`iterations` and loss scaling are delegated to it, so callbacks such as
`ReduceLROnPlateau` and mixed precision keep working. It serializes with the model
(the parameters are remembered by variable path).
"""

import math

import keras
from keras import ops

__all__ = ["ActivationLRMultiplier"]


@keras.saving.register_keras_serializable(package="keras_bioact")
class ActivationLRMultiplier(keras.optimizers.Optimizer):
    """Wraps an optimizer and multiplies the learning rate of activation parameters.

    Args:
        optimizer: the Keras optimizer to wrap (its learning rate is the base rate).
        multiplier: factor for the activation parameters' learning rate, a number >= 0, or a
            dict mapping a parameter name (`"n"`, `"s"`, `"r"`, ...) to its factor (names not
            in the dict keep factor 1). 0 freezes them.
        model: the model whose activation parameters (`keras_bioact.params.activation_parameters`)
            get the multiplier. Build the model before creating the optimizer.
        paths: alternatively (or in addition), a dict `{variable.path: factor}` choosing any
            variables by path; this is what `get_config` stores.
        name: optional name.
    """

    def __init__(self, optimizer, multiplier=None, model=None, paths=None, name=None, **kwargs):
        if kwargs:
            raise ValueError(f"ActivationLRMultiplier: unexpected arguments {sorted(kwargs)}.")
        if isinstance(optimizer, (str, dict)):
            optimizer = keras.optimizers.get(optimizer)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise ValueError(
                "ActivationLRMultiplier: `optimizer` must be a keras.optimizers.Optimizer, "
                f"got {optimizer!r}."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self._multipliers = {}  # variable path -> factor
        self._selected_ids = {}  # id(variable) -> factor, when the variables themselves are known
        if model is not None:
            if multiplier is None:
                raise ValueError("ActivationLRMultiplier: give `multiplier` together with `model`.")
            from keras_bioact.params import activation_parameters

            params = activation_parameters(model)
            if not params:
                raise ValueError(
                    f"ActivationLRMultiplier: model {model.name!r} has no keras-bioact activation parameters."
                )
            for p in params:
                factor = _factor(multiplier, p.name)
                self._multipliers[p.variable.path] = factor
                self._selected_ids[id(p.variable)] = factor
        elif multiplier is not None and paths is None:
            raise ValueError("ActivationLRMultiplier: give `model` (or `paths`) to say which variables get "
                             "the multiplier.")
        for path, factor in (paths or {}).items():
            self._multipliers[str(path)] = _factor(float(factor), path)
        if not self._multipliers:
            raise ValueError("ActivationLRMultiplier: no variables selected (give `model` or `paths`).")

    @property
    def multipliers(self):
        """`{variable path: factor}`."""
        return dict(self._multipliers)

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        scaled = []  # (index in var_list, factor)
        by_path = {}
        for i, v in enumerate(var_list):
            by_path.setdefault(v.path, []).append(i)
        for i, v in enumerate(var_list):
            factor = self._selected_ids.get(id(v))
            if factor is None and v.path in self._multipliers:
                if len(by_path[v.path]) > 1:
                    raise ValueError(
                        f"ActivationLRMultiplier: variable path {v.path!r} is not unique in the model; "
                        "create the optimizer with `model=` so that variables are matched exactly."
                    )
                factor = self._multipliers[v.path]
            if factor is not None and factor != 1.0:
                scaled.append((i, factor))
        self._scaled = tuple(scaled)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            if not self.built:
                raise ValueError("ActivationLRMultiplier: build the optimizer first or pass the variables.")
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
        index = {self._var_key(v): i for i, v in enumerate(self._trainable_variables)}
        scaled = dict(self._scaled)
        selected = []
        for v in trainable_variables:
            factor = scaled.get(index.get(self._var_key(v)))
            if factor is not None:
                selected.append((v, factor, ops.copy(ops.convert_to_tensor(v))))
        self.inner_optimizer.apply(grads, trainable_variables)
        for v, factor, old in selected:
            new = ops.convert_to_tensor(v)
            value = old + ops.cast(factor, old.dtype) * (new - old)
            if v.constraint is not None:
                value = v.constraint(value)
            v.assign(value)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        # The base implementation maps `self.variables` (own + inner) and calls `apply`.
        return super().stateless_apply(optimizer_variables, grads, trainable_variables)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def loss_scale_factor(self):
        inner = getattr(self, "inner_optimizer", None)
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.loss_scale_factor = value

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "paths": dict(self._multipliers),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(optimizer, **config)


def _factor(multiplier, name):
    factor = multiplier.get(name, 1.0) if isinstance(multiplier, dict) else multiplier
    number = isinstance(factor, (int, float)) and not isinstance(factor, bool)
    if not number or not math.isfinite(factor) or factor < 0:
        raise ValueError(
            f"ActivationLRMultiplier: `multiplier` must be a finite number >= 0 (or a dict of them), "
            f"got {factor!r} for {name!r}."
        )
    return float(factor)
