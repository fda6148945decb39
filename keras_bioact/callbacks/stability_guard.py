import math

import keras
import numpy as np

from keras_bioact.params import activation_parameters


class StabilityGuard(keras.callbacks.Callback):
    """Stops training when an activation parameter becomes NaN or Inf, naming the layer.

    After every `check_every` training batches the guard reads each keras-bioact activation
    parameter (`keras_bioact.params.activation_parameters`: a gamma's `n` and `s`, a BRU's
    `r`, ...) and, if `check_loss`, the batch loss. If a value is NaN or Inf it names the layer
    and parameter (with the number of bad elements, epoch and batch), stores the event in
    `self.event` and acts:

    - `action="restore"` (default): restore the weights of the last good check (all model
      weights, since a bad step corrupts more than the activation parameters) and stop training;
    - `action="stop"`: stop training, leaving the weights as they are;
    - `action="raise"`: raise `FloatingPointError` from `fit`.

    Parameters that are already NaN/Inf when training starts raise `FloatingPointError`
    whatever the action (there are no good weights to go back to).

    Gradients: Keras does not hand gradients to callbacks in a backend-neutral way, so the
    guard checks the parameters *after* each optimizer update instead. A NaN or Inf in a
    parameter's gradient reaches the parameter in that very update with every Keras optimizer
    (SGD, momentum, Adam, RMSprop, ...: the step is a product or ratio involving the gradient,
    and Inf/Inf is NaN); the one exception is `LossScaleOptimizer` (mixed precision), which
    already skips steps with non-finite gradients. A non-finite loss means non-finite
    gradients everywhere and is reported as such when `check_loss=True`.

    Cost: one read of the activation parameters per check (tiny), plus a copy of all model
    weights (`model.get_weights()`) per good check when `action="restore"`; raise
    `check_every` for large models. Under JAX, reading weights in a batch callback also
    syncs the training state each check.

    Args:
        action: `"restore"`, `"stop"` or `"raise"`.
        check_every: check every this many batches (>= 1; 1 by default).
        check_loss: also treat a non-finite batch loss as a failure (default True).
        check_all_weights: also check every other model weight, not only activation
            parameters (default False).
        verbose: print a message when the guard fires (default 1).
    """

    def __init__(self, action="restore", check_every=1, check_loss=True, check_all_weights=False, verbose=1):
        super().__init__()
        if action not in ("restore", "stop", "raise"):
            raise ValueError(
                f"StabilityGuard: `action` must be 'restore', 'stop' or 'raise', got {action!r}."
            )
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"StabilityGuard: `check_every` must be an int >= 1, got {check_every!r}.")
        self.action = action
        self.check_every = check_every
        self.check_loss = bool(check_loss)
        self.check_all_weights = bool(check_all_weights)
        self.verbose = verbose
        self.event = None
        self._good_weights = None
        self._parameters = []
        self._epoch = 0
        self._batches_seen = 0

    def on_train_begin(self, logs=None):
        self.event = None
        self._batches_seen = 0
        self._parameters = activation_parameters(self.model)
        failure = self._find_failure(None)
        if failure is not None:
            # Keras runs at least one batch after `on_train_begin` even if `stop_training` is
            # set, and there are no good weights to restore: refuse to start.
            self._fire(failure, batch=None, at_start=True)
        if self.action == "restore":
            self._good_weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._batches_seen += 1
        if self.event is not None or self._batches_seen % self.check_every:
            return
        self.model  # noqa: B018 - under JAX, reading `self.model` syncs the training state into the variables
        failure = self._find_failure(logs)
        if failure is None:
            if self.action == "restore":
                self._good_weights = self.model.get_weights()
            return
        self._fire(failure, batch)

    # ------------------------------------------------------------------------------------
    def _find_failure(self, logs):
        for p in self._parameters:
            value = np.asarray(keras.ops.convert_to_numpy(p.variable.value))
            n_nan = int(np.isnan(value).sum())
            n_inf = int(np.isinf(value).sum())
            if n_nan or n_inf:
                return {
                    "layer": p.layer.name,
                    "parameter": p.name,
                    "layer_class": type(p.layer).__name__,
                    "nan": n_nan,
                    "inf": n_inf,
                    "size": int(value.size),
                }
        if self.check_loss and logs and "loss" in logs:
            loss = float(np.asarray(keras.ops.convert_to_numpy(logs["loss"])))
            if not math.isfinite(loss):
                return {"layer": None, "parameter": "loss", "loss": loss}
        if self.check_all_weights:
            for v in self.model.weights:
                value = np.asarray(keras.ops.convert_to_numpy(v.value))
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    return {
                        "layer": v.path.rsplit("/", 1)[0],
                        "parameter": v.name,
                        "layer_class": None,
                        "nan": int(np.isnan(value).sum()),
                        "inf": int(np.isinf(value).sum()),
                        "size": int(value.size),
                    }
        return None

    def _fire(self, failure, batch, at_start=False):
        where = "before training" if at_start else f"after epoch {self._epoch + 1}, batch {batch}"
        if failure["layer"] is None:
            message = (
                f"StabilityGuard: the training loss is {failure['loss']} {where}: the gradients are not "
                "finite (activation parameters are still finite)."
            )
        else:
            kind = f" ({failure['layer_class']})" if failure.get("layer_class") else ""
            message = (
                f"StabilityGuard: parameter {failure['parameter']!r} of layer {failure['layer']!r}{kind} has "
                f"{failure['nan']} NaN and {failure['inf']} Inf value(s) of {failure['size']} {where}."
            )
        restored = False
        if at_start:
            message += " Refusing to train (there are no good weights to restore)."
        elif self.action == "restore" and self._good_weights is not None:
            self.model.set_weights(self._good_weights)
            restored = True
            message += " Restored the weights of the last good check and stopped training."
        elif self.action in ("stop", "restore"):
            message += " Stopped training."
        self.event = dict(failure, epoch=None if at_start else self._epoch, batch=batch, restored=restored,
                          message=message)
        if self.action == "raise" or at_start:
            raise FloatingPointError(message)
        self.model.stop_training = True
        if self.verbose:
            print(message)
