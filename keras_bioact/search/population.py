"""Train a whole population of networks of one architecture at once, in one compiled call: the
shared core of both engines.

* `PopulationTrainer` (evolution's Baldwinian / Lamarckian modes): every candidate starts from
  the same weights with its own activation parameters and learns briefly with SGD;
* `PopulationFit` (Optuna's batched trials, `[optuna] batch`): every member has its own start
  (its own seed), learning rate and data order, and trains as `model.fit` with Adam would,
  epoch by epoch (so that each member can be reported and pruned after every epoch);
* `METRICS`: the per-sample metrics both score with.

`PopulationTrainer`: every candidate starts from the same outer weights with its own activation parameters, is
trained briefly with SGD, and comes back with its learned activation parameters and its score
on held-out data. `PopulationTrainer` maps one stateless train step
(`model.stateless_call(trainable, non_trainable, x, training=True)` + loss) over the population:

* JAX: `jax.vmap` of the whole run (epochs and batches as nested `jax.lax.scan`), one `jax.jit`;
* PyTorch: `torch.func.vmap` of `torch.func.grad`, one vectorised call per batch;
* TensorFlow: a loop over the candidates (not vectorised across them), each candidate's whole
  training one XLA-compiled `tf.function` call with a `tf.while_loop` over batches.

The step reproduces `model.fit(x, y, batch_size, epochs, shuffle=False)` with
`keras.optimizers.SGD(learning_rate, momentum, nesterov)`: the same batches in the same order
(the last one partial), the loss plus the layers' regularisation losses, each variable's
constraint applied after every update. Models that draw random numbers (Dropout, noise) use
the per-candidate `model.fit` loop, and so (with `vectorized="auto"`) does anything the
backend's `vmap` cannot trace; `fallback_reason` says why.
"""

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from keras_bioact.params import ParameterView, walk_layers

__all__ = ["METRICS", "PopulationFit", "PopulationTrainer", "TrainedPopulation", "fit_orders"]

_LOSSES = ("crossentropy", "mse")


def _accuracy(y, out, from_logits):
    # Correct iff the true class scores strictly above every other class (ties count as wrong,
    # so a constant output never scores). Written without argmax, which TensorFlow's
    # vectorized_map cannot batch.
    del from_logits
    out = ops.cast(out, "float32")
    y = ops.cast(ops.reshape(y, ops.shape(out)[:-1]), "int32")
    onehot = ops.one_hot(y, ops.shape(out)[-1], dtype="float32")
    true_score = ops.sum(out * onehot, axis=-1)
    others = ops.max(ops.where(onehot > 0, ops.full_like(out, -np.inf), out), axis=-1)
    return ops.cast(true_score > others, "float32")


def _crossentropy(y, out, from_logits):
    y = ops.cast(ops.reshape(y, ops.shape(out)[:-1]), "int32")
    return keras.losses.sparse_categorical_crossentropy(y, ops.cast(out, "float32"), from_logits=from_logits)


def _mse(y, out, from_logits):
    del from_logits
    diff = ops.cast(out, "float32") - ops.cast(ops.reshape(y, ops.shape(out)), "float32")
    return ops.mean(ops.reshape(diff * diff, (ops.shape(diff)[0], -1)), axis=-1)


# name -> (per-sample function, objective sense)
METRICS = {
    "accuracy": (_accuracy, "max"),
    "crossentropy": (_crossentropy, "min"),
    "mse": (_mse, "min"),
}


@dataclasses.dataclass
class TrainedPopulation:
    """What `PopulationTrainer.train` returns: `learned`, `(P, view.size)` learned activation
    parameters (natural space); `scores`, `(P,)` metric of each trained candidate on the validation
    data (or `None`); `weights` (with `return_weights=True`), `(trainable, non_trainable)` lists of
    arrays stacked over the population, in the order of the model's variables (or `None`)."""

    learned: np.ndarray
    scores: np.ndarray | None = None
    weights: tuple | None = None


def _positive_int(owner, name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: `{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def _numpy(tv, ntv, n):
    return tuple([np.array(ops.convert_to_numpy(v))[:n] for v in group] for group in (tv, ntv))


def _stack(pairs, join):
    return tuple([join(arrays) for arrays in zip(*(pair[k] for pair in pairs), strict=True)] for k in (0, 1))


def _random_layers(model):
    return [layer.name for layer in walk_layers(model) if getattr(layer, "_seed_generators", None)]


def unvectorizable(model, backend=None):
    """Why `model`'s training cannot be vectorised across members on `backend` (default: the
    current one), or "" when it can."""
    backend = backend or keras.backend.backend()
    if backend not in ("jax", "torch", "tensorflow"):
        return f"no vectorised training for backend {backend!r}"
    random = _random_layers(model)
    if random:
        return f"layers {random} draw random numbers (Dropout or noise); the vectorised step cannot"
    if backend == "torch":
        conv = _convolutions(model)
        if conv:  # torch: "NYI: Tensor.clone(memory_format) inside vmap ... (got ChannelsLast)"
            return f"torch.func.vmap cannot run Keras' convolutions (layers {conv}) on torch"
    return ""


def _convolutions(model):
    """Names of `model`'s layers that run `keras.ops.conv` (Keras' convolutions, TwoArgConv2D)."""
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.convolutional.base_conv_transpose import BaseConvTranspose
    from keras.src.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv
    from keras.src.layers.convolutional.base_separable_conv import BaseSeparableConv

    from keras_bioact.layers import TwoArgConv2D

    kinds = (BaseConv, BaseConvTranspose, BaseDepthwiseConv, BaseSeparableConv, TwoArgConv2D)
    return [layer.name for layer in walk_layers(model) if isinstance(layer, kinds)]


def vectorising_is_slower(model, backend=None):
    """Why training `model`'s members vectorised would be slower than one after the other on
    `backend` (default: the current one), or "". On JAX's CPU a vectorised convolution becomes a
    grouped convolution, which XLA runs slower than the members' convolutions one by one: a batch
    of 4 CNN trials trained 3.5x slower than one by one (`benchmarks/search_throughput.py --batched
    --arch cnn`, Fashion-MNIST)."""
    backend = backend or keras.backend.backend()
    if backend != "jax":
        return ""
    import jax

    conv = _convolutions(model)
    if conv and jax.default_backend() == "cpu":
        return f"vectorised convolutions (layers {conv}) train slower than one by one on JAX's CPU"
    return ""


class PopulationTrainer:
    """Train every candidate of a population from the same start, vectorised where possible.

    Args:
        model: a built Keras model (it need not be compiled). Its current weights are every
            candidate's start; the vectorised paths never assign them, the loop path restores
            them afterwards (and compiles `model` with SGD).
        parameters: the `ActivationParameter`s the candidates set (default: all of the model's).
            Trainable ones learn together with the weights; non-trainable ones stay fixed.
        x, y: training data (NumPy), split into batches in order, as `fit(shuffle=False)`.
        loss: `"crossentropy"` (sparse categorical), `"mse"`, or a `keras.losses.Loss`.
        from_logits: for `"crossentropy"` (and the crossentropy metric).
        learning_rate, momentum, nesterov: the SGD optimizer (as `keras.optimizers.SGD`).
        epochs, batch_size: as in `model.fit`.
        val_data: optional `(x, y)` on which every trained candidate is scored.
        metric: `"accuracy"`, `"crossentropy"`, `"mse"` or a callable `(y, out, from_logits)`
            returning per-sample values (keras.ops).
        eval_batch_size: score the validation data in batches of this size (default: all).
        vectorized: `True` (vectorised; raises if the model or backend cannot be), `False`
            (per-candidate `model.fit` loop) or `"auto"` (vectorised unless impossible;
            `fallback_reason` says why not).
        population_chunk: train at most this many candidates at once.
        memory_budget: bytes; bounds the chunk by an estimate of each candidate's memory
            (weights, gradients, optimizer state and activations of one batch).
        jit_compile: for the loop path's `model.compile`.
    """

    def __init__(
        self,
        model,
        parameters=None,
        x=None,
        y=None,
        *,
        loss="crossentropy",
        from_logits=True,
        learning_rate=0.05,
        momentum=0.0,
        nesterov=False,
        epochs=1,
        batch_size=32,
        val_data=None,
        metric="accuracy",
        eval_batch_size=None,
        vectorized="auto",
        population_chunk=None,
        memory_budget=None,
        jit_compile="auto",
    ):
        name = "PopulationTrainer"
        if vectorized not in (True, False, "auto"):
            raise ValueError(f"{name}: `vectorized` must be True, False or 'auto', got {vectorized!r}.")
        if x is None or y is None or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{name}: `x` and `y` must be non-empty training data of equal length.")
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            raise ValueError(f"{name}: `learning_rate` must be a number > 0, got {learning_rate!r}.")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"{name}: `momentum` must be a number in [0, 1), got {momentum!r}.")
        if isinstance(loss, str) and loss not in _LOSSES:
            raise ValueError(f"{name}: `loss` must be one of {_LOSSES} or a keras Loss, got {loss!r}.")
        if memory_budget is not None and not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
            raise ValueError(f"{name}: `memory_budget` must be a number of bytes > 0, got {memory_budget!r}.")
        self.model = model
        self.view = ParameterView(model, parameters=parameters)
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.epochs = _positive_int(name, "epochs", epochs)
        self.batch_size = _positive_int(name, "batch_size", batch_size)
        self.population_chunk = _positive_int(name, "population_chunk", population_chunk, True)
        self.eval_batch_size = _positive_int(name, "eval_batch_size", eval_batch_size, True)
        self.memory_budget = memory_budget
        self.learning_rate, self.momentum, self.nesterov = float(learning_rate), float(momentum), nesterov
        self.from_logits = bool(from_logits)
        self.jit_compile = jit_compile
        if loss == "crossentropy":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        elif loss == "mse":
            loss = keras.losses.MeanSquaredError()
        self.loss = loss
        self.val = None if val_data is None else tuple(np.asarray(a) for a in val_data)
        if callable(metric):
            self.metric_fn = metric
        else:
            if metric not in METRICS:
                raise ValueError(f"{name}: `metric` must be one of {tuple(METRICS)} or a callable.")
            self.metric_fn = METRICS[metric][0]
        self.backend = keras.backend.backend()
        self.fallback_reason = self._why_not_vectorized()
        if vectorized is True and self.fallback_reason:
            raise ValueError(f"{name}: `vectorized=True` is impossible: {self.fallback_reason}.")
        self.vectorized = vectorized is not False and not self.fallback_reason
        self._auto = vectorized == "auto"
        self._slots = self._find_slots()
        self._compiled = {}
        self._fit_ready = False

    # -- bookkeeping ---------------------------------------------------------------------

    def _why_not_vectorized(self):
        return unvectorizable(self.model, self.backend)

    def _find_slots(self):
        where = {id(v): ("n", i) for i, v in enumerate(self.model.non_trainable_variables)}
        where.update({id(v): ("t", i) for i, v in enumerate(self.model.trainable_variables)})
        missing = [p.path for p in self.view.parameters if id(p.variable) not in where]
        if missing:
            raise ValueError(f"PopulationTrainer: {missing} are not variables of the model.")
        return [where[id(p.variable)] for p in self.view.parameters]

    def chunk_size(self, population):
        """Candidates trained at once for a population of `population`."""
        chunk = population if self.population_chunk is None else min(population, self.population_chunk)
        if self.memory_budget is not None:
            chunk = min(chunk, max(1, int(self.memory_budget // self.bytes_per_candidate())))
        return max(1, chunk)

    def bytes_per_candidate(self):
        """Estimated memory of one candidate in the vectorised step (bytes)."""
        variables = self.model.trainable_variables + self.model.non_trainable_variables
        state = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
        state *= 4 if self.momentum else 3  # weights, their update, gradients (+ momentum)
        per_sample = 0
        for layer in getattr(self.model, "layers", []):
            try:
                per_sample += math.prod(d for d in layer.output.shape[1:] if d is not None)
            except (AttributeError, ValueError, TypeError):  # subclassed or shared layers
                continue
        batch = max(self.batch_size, self.eval_batch_size or 0)
        return int(state + 2 * 4 * per_sample * batch)  # forward values and their gradients

    def _split(self, natural):
        return [
            np.asarray(chunk, dtype=p.variable.dtype)
            for p, chunk in zip(self.view.parameters, self.view.split(natural), strict=True)
        ]

    def _batches(self, x, y):
        """`(full batches stacked (nb, bs, ...) or None, remainder batch or None)`."""
        bs, nb = self.batch_size, len(x) // self.batch_size
        full = tuple(a[: nb * bs].reshape((nb, bs) + a.shape[1:]) for a in (x, y)) if nb else None
        return full, (None if nb * bs == len(x) else (x[nb * bs :], y[nb * bs :]))

    # -- the stateless step (any backend) ----------------------------------------------------

    def _start(self, values, tv, ntv):
        tv, ntv = list(tv), list(ntv)
        for (kind, idx), value in zip(self._slots, values, strict=True):
            (tv if kind == "t" else ntv)[idx] = value
        mom = [ops.zeros_like(v) for v in tv] if self.momentum else []
        return tv, ntv, mom

    def _loss_and_state(self, tv, ntv, x, y):
        out, ntv, losses = self.model.stateless_call(tv, ntv, x, training=True, return_losses=True)
        loss = self.loss(y, out)
        for extra in losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss, ntv

    def _sgd(self, tv, grads, mom):
        new_tv, new_mom = [], []
        for i, (w, g) in enumerate(zip(tv, grads, strict=True)):
            lr_g = ops.multiply(ops.cast(g, w.dtype), ops.cast(self.learning_rate, w.dtype))
            if self.momentum:
                m = ops.subtract(ops.multiply(mom[i], self.momentum), lr_g)
                new_mom.append(m)
                w = ops.add(w, ops.subtract(ops.multiply(m, self.momentum), lr_g) if self.nesterov else m)
            else:
                w = ops.subtract(w, lr_g)
            constraint = self.model.trainable_variables[i].constraint
            new_tv.append(w if constraint is None else constraint(w))
        return new_tv, new_mom

    def _score_sum(self, tv, ntv, x, y):
        out, _ = self.model.stateless_call(tv, ntv, x, training=False)
        return ops.sum(self.metric_fn(y, out, self.from_logits))

    def _learned(self, tv, ntv):
        parts = [ops.convert_to_numpy((tv if kind == "t" else ntv)[i]) for kind, i in self._slots]
        return np.concatenate([np.asarray(p, "float64").reshape(len(p), -1) for p in parts], axis=1)

    # -- JAX -------------------------------------------------------------------------------

    def _build_jax(self):
        import jax
        import jax.numpy as jnp

        def step(carry, batch):
            tv, ntv, mom = carry
            (_, ntv), grads = jax.value_and_grad(self._loss_and_state, has_aux=True)(tv, ntv, *batch)
            tv, mom = self._sgd(tv, grads, mom)
            return (tv, ntv, mom), None

        def train_one(values, tv, ntv, full, rest):
            def epoch(carry, _):
                if full is not None:
                    carry, _ = jax.lax.scan(step, carry, full)
                if rest is not None:
                    carry, _ = step(carry, rest)
                return carry, None

            carry, _ = jax.lax.scan(epoch, self._start(values, tv, ntv), None, length=self.epochs)
            tv, ntv = carry[0], carry[1]
            # scoring inside the same compiled call (one forward per validation batch)
            return tv, ntv, sum((self._score_sum(tv, ntv, *b) for b in val), jnp.zeros(()))

        train = jax.jit(jax.vmap(train_one, in_axes=(0, None, None, None, None)))
        full, rest = self._batches(self.x, self.y)
        full = None if full is None else tuple(jnp.asarray(a) for a in full)
        rest = None if rest is None else tuple(jnp.asarray(a) for a in rest)
        val = [tuple(jnp.asarray(a) for a in b) for b in self._val_batches()]
        return lambda values, tv, ntv: train(values, tv, ntv, full, rest)

    # -- PyTorch ---------------------------------------------------------------------------

    def _build_torch(self):
        import torch

        # vmap only the gradient (and constraints); SGD on the stacked tensors as Keras's torch SGD.
        grad = torch.func.vmap(
            torch.func.grad(self._loss_and_state, has_aux=True),
            in_dims=(0, 0, None, None),
            randomness="error",
        )
        constrained = [i for i, v in enumerate(self.model.trainable_variables) if v.constraint is not None]
        constraints = [self.model.trainable_variables[i].constraint for i in constrained]
        constrain = torch.func.vmap(lambda ws: [c(w) for c, w in zip(constraints, ws, strict=True)])
        lr, momentum = self.learning_rate, self.momentum

        def step(tv, ntv, mom, x, y):
            grads, ntv = grad(tv, ntv, x, y)
            if momentum:
                torch._foreach_mul_(mom, momentum)
                torch._foreach_add_(mom, grads, alpha=-lr)
                if self.nesterov:
                    tv = torch._foreach_add(tv, grads, alpha=-lr)
                    torch._foreach_add_(tv, mom, alpha=momentum)
                else:
                    tv = torch._foreach_add(tv, mom)
            else:
                tv = torch._foreach_add(tv, grads, alpha=-lr)
            tv = list(tv)
            for i, w in zip(
                constrained, constrain([tv[i] for i in constrained]) if constrained else [], strict=True
            ):
                tv[i] = w
            return tv, list(ntv), mom

        score = torch.func.vmap(self._score_sum, in_dims=(0, 0, None, None), randomness="error")
        device = ops.convert_to_tensor(np.zeros(1, "float32")).device
        full, rest = self._batches(self.x, self.y)
        batches = [] if full is None else [(full[0][i], full[1][i]) for i in range(len(full[0]))]
        batches += [] if rest is None else [rest]
        batches = [tuple(torch.as_tensor(a, device=device) for a in b) for b in batches]
        val = [tuple(torch.as_tensor(a, device=device) for a in b) for b in self._val_batches()]

        def run(values, tv, ntv):
            with torch.no_grad():
                n = len(values[0])
                values = [torch.as_tensor(v, device=device) for v in values]
                tv = [v.unsqueeze(0).expand((n,) + tuple(v.shape)).clone() for v in tv]
                ntv = [v.unsqueeze(0).expand((n,) + tuple(v.shape)).clone() for v in ntv]
                tv, ntv, mom = self._start(values, tv, ntv)
                for _ in range(self.epochs):
                    for x, y in batches:
                        tv, ntv, mom = step(tv, ntv, mom, x, y)
                return tv, ntv, sum(score(tv, ntv, x, y) for x, y in val)

        return run

    # -- TensorFlow (a loop over candidates, each one compiled call) ----------------------

    def _build_tensorflow(self):
        import tensorflow as tf

        full, rest = self._batches(self.x, self.y)

        def step(tv, ntv, mom, x, y):
            with tf.GradientTape() as tape:
                tape.watch(tv)
                loss, ntv = self._loss_and_state(tv, ntv, x, y)
            tv, mom = self._sgd(tv, tape.gradient(loss, tv), mom)
            return tv, list(ntv), mom

        @tf.function(jit_compile=True, reduce_retracing=True)
        def train_one(values, tv, ntv, xs, ys, xr, yr):
            carry = self._start(values, tv, ntv)

            def epoch(e, tv, ntv, mom):
                if full is not None:
                    _, tv, ntv, mom = tf.while_loop(
                        lambda i, *_: i < len(full[0]),
                        lambda i, tv, ntv, mom: (i + 1, *step(tv, ntv, mom, xs[i], ys[i])),
                        (tf.constant(0), tv, ntv, mom),
                    )
                if rest is not None:
                    tv, ntv, mom = step(tv, ntv, mom, xr, yr)
                return e + 1, tv, ntv, mom

            _, tv, ntv, _ = tf.while_loop(lambda e, *_: e < self.epochs, epoch, (tf.constant(0), *carry))
            return tv, ntv

        score_one = tf.function(self._score_sum, jit_compile=True, reduce_retracing=True)
        data = [tf.constant(a) for a in (full or (np.zeros(1),) * 2) + (rest or (np.zeros(1),) * 2)]

        val = [tuple(tf.constant(a) for a in b) for b in self._val_batches()]

        def run(values, tv, ntv):
            results = [train_one([v[i] for v in values], tv, ntv, *data) for i in range(len(values[0]))]
            totals = [sum(score_one(*r, *b) for b in val) for r in results]
            tv, ntv = (
                [tf.stack([r[k][j] for r in results]) for j in range(len(results[0][k]))] for k in (0, 1)
            )
            return tv, ntv, tf.stack(totals) if val else None

        return run

    # -- driving -------------------------------------------------------------------------

    def _train_vectorized(self, natural, return_weights):
        if not self._compiled:
            build = {"jax": self._build_jax, "torch": self._build_torch, "tensorflow": self._build_tensorflow}
            self._compiled["train"] = build[self.backend]()
        train = self._compiled["train"]
        tv0 = [v.value for v in self.model.trainable_variables]
        ntv0 = [v.value for v in self.model.non_trainable_variables]
        chunk = self.chunk_size(len(natural))
        learned, scores, weights = [], [], []
        for start in range(0, len(natural), chunk):
            part = natural[start : start + chunk]
            n = len(part)
            if n < chunk and self.backend == "jax":  # pad the last chunk: same compiled shapes
                part = np.concatenate([part, np.repeat(part[-1:], chunk - n, axis=0)])
            tv, ntv, totals = train(self._split(part), tv0, ntv0)
            tv, ntv = list(tv), list(ntv)
            learned.append(self._learned(tv, ntv)[:n])
            if self.val is not None:
                scores.append(np.asarray(ops.convert_to_numpy(totals), "float64")[:n] / len(self.val[0]))
            if return_weights:
                weights.append(_numpy(tv, ntv, n))
        return TrainedPopulation(
            np.concatenate(learned),
            np.concatenate(scores) if self.val is not None else None,
            _stack(weights, np.concatenate) if return_weights else None,
        )

    def _val_batches(self):
        if self.val is None:
            return []
        (x, y), bs = self.val, self.eval_batch_size or len(self.val[0])
        return [(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)]

    def _score_model(self):
        total = 0.0
        for xb, yb in self._val_batches():
            out = self.model(xb, training=False)
            per_sample = self.metric_fn(ops.convert_to_tensor(yb), out, self.from_logits)
            total += float(ops.convert_to_numpy(ops.sum(per_sample)))
        return total / len(self.val[0])

    def _prepare_fit(self):
        if self._fit_ready:
            return
        self.model.compile(
            optimizer=keras.optimizers.SGD(
                self.learning_rate, momentum=self.momentum, nesterov=self.nesterov
            ),
            loss=self.loss,
            jit_compile=self.jit_compile,
        )
        self.model.optimizer.build(self.model.trainable_variables)
        # Restored before every candidate (iteration 0, zero momenta, the learning rate kept:
        # zeroing every optimizer variable would zero the learning rate, and nothing is learned).
        self._optimizer_start = [np.array(ops.convert_to_numpy(v)) for v in self.model.optimizer.variables]
        self._fit_ready = True

    def _train_loop(self, natural, return_weights):
        self._prepare_fit()
        model = self.model
        start = [np.array(w) for w in model.get_weights()]
        learned = np.empty_like(natural)
        scores = np.empty(len(natural)) if self.val is not None else None
        weights = []
        try:
            for i, candidate in enumerate(natural):
                model.set_weights(start)
                for v, value in zip(model.optimizer.variables, self._optimizer_start, strict=True):
                    v.assign(value)
                self.view.set_vector(candidate, "natural")
                model.fit(
                    self.x, self.y, epochs=self.epochs, batch_size=self.batch_size, shuffle=False, verbose=0
                )
                learned[i] = self.view.get_vector("natural")
                if scores is not None:
                    scores[i] = self._score_model()
                if return_weights:
                    weights.append(_numpy(model.trainable_variables, model.non_trainable_variables, None))
        finally:
            model.set_weights(start)
        return TrainedPopulation(learned, scores, _stack(weights, np.stack) if return_weights else None)

    def train(self, natural, return_weights=False):
        """Train each row of `natural` (`(P, view.size)`, natural space); see `TrainedPopulation`."""
        natural = np.atleast_2d(np.asarray(natural, dtype="float64"))
        if natural.shape[-1] != self.view.size:
            raise ValueError(
                f"PopulationTrainer: expected vectors of length {self.view.size}, got {natural.shape}."
            )
        natural = self.view.to_natural(natural, "natural")  # clipped, as set_vector writes them
        if self.vectorized:
            try:
                return self._train_vectorized(natural, return_weights)
            except Exception as error:  # the backend cannot vectorise this model: use the loop
                if not self._auto:
                    raise
                self.vectorized = False
                self._compiled = {}
                self.fallback_reason = f"{type(error).__name__}: {error}"
        return self._train_loop(natural, return_weights)


# --------------------------------------------------------------------------------------------
# model.fit of a population of members (Optuna's batched trials)

# keras.optimizers.Adam's defaults (the objective compiles Adam(learning_rate))
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7
FIT_BACKENDS = ("jax", "torch")


def fit_orders(seed, n, epochs, backend=None):
    """`(epochs, n)`: the order in which `model.fit(x, y, validation_data=..., shuffle=True)`
    visits `n` training samples in each epoch after `keras.utils.set_random_seed(seed)`.

    JAX: one `np.random.permutation(n)` per epoch (Keras' array iterator). PyTorch: per epoch, the
    training DataLoader's iterator draws its base seed, its `RandomSampler` draws the seed of
    its permutation, and the validation at the epoch's end draws three more (Keras 3.15, PyTorch
    2.13). These are Keras' and PyTorch's internals: the batched search's equality test checks
    them against `model.fit`."""
    import keras

    backend = backend or keras.backend.backend()
    if backend == "torch":
        import torch

        generator = torch.Generator()
        generator.manual_seed(int(seed))

        def draw():
            return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())

        orders = []
        for _ in range(epochs):
            draw()  # the training iterator's base seed
            sampler = torch.Generator()
            sampler.manual_seed(draw())
            orders.append(torch.randperm(n, generator=sampler).numpy())
            for _ in range(3):  # the validation at the epoch's end
                draw()
        return np.stack(orders)
    if backend != "jax":
        raise ValueError(f"fit_orders: no replay of model.fit's order for backend {backend!r}.")
    rng = np.random.RandomState(int(seed))
    return np.stack([rng.permutation(n) for _ in range(epochs)])


def _adam_scalars(t, lr, dtype):
    """Adam's step size `lr * sqrt(1 - b2^t) / (1 - b1^t)` of step `t + 1` (as Keras)."""
    step = ops.cast(t + 1, dtype)
    b1 = ops.power(ops.cast(ADAM_BETA_1, dtype), step)
    b2 = ops.power(ops.cast(ADAM_BETA_2, dtype), step)
    return ops.cast(lr, dtype) * ops.sqrt(1 - b2) / (1 - b1)


class PopulationFit:
    """`model.fit(x, y, validation_data=(x_val, y_val), epochs, batch_size, shuffle=True)` of a
    population of members of one architecture, each compiled as the Optuna objective compiles
    a model (`Adam(learning_rate)`, sparse categorical cross-entropy on probabilities,
    accuracy), vectorised over the members: JAX, `jax.vmap` of one epoch (batches as a
    `jax.lax.scan`), one `jax.jit` call per epoch; PyTorch, `torch.func.vmap` of the gradient,
    one call per batch, Adam on the stacked weights.

    Every member has its own start (the values of all the model's variables: its seed's
    weights and its activation parameters), learning rate and order of the data in each epoch
    (`fit_orders` of its seed), so its logs equal those of its own `model.fit` to float
    rounding (the batched search tests this to 1e-5).

    Args:
        model: a built model of the architecture; only its `stateless_call` is used (its
            variables are never assigned).
        x, y, x_val, y_val: training and validation data (NumPy; integer labels).
        epochs, batch_size: as in `model.fit` (validation in batches of `batch_size` too).
        size: members trained at once; under JAX every call is padded to it (one compilation).
    """

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

    def __init__(self, model, x, y, x_val, y_val, *, epochs, batch_size, size):
        self.backend = keras.backend.backend()
        if self.backend not in FIT_BACKENDS:
            raise ValueError(f"PopulationFit: no vectorised fit for backend {self.backend!r}.")
        why = unvectorizable(model, self.backend)
        if why:
            raise ValueError(f"PopulationFit: not vectorised: {why}.")
        self.model = model
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.x_val, self.y_val = np.asarray(x_val), np.asarray(y_val)
        self.epochs = _positive_int("PopulationFit", "epochs", epochs)
        self.batch_size = _positive_int("PopulationFit", "batch_size", batch_size)
        self.size = _positive_int("PopulationFit", "size", size)
        self._loss_fn = keras.losses.SparseCategoricalCrossentropy()
        self._constraints = [v.constraint for v in model.trainable_variables]
        self._epoch = None

    # -- the stateless pieces (one member) ----------------------------------------------------

    def _loss(self, tv, ntv, x, y):
        out, ntv, losses = self.model.stateless_call(tv, ntv, x, training=True, return_losses=True)
        loss = self._loss_fn(y, out)
        for extra in losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss, (ntv, out)

    def _hits(self, y, out):
        return ops.sum(keras.metrics.sparse_categorical_accuracy(y, out))

    def _eval_sums(self, tv, ntv, x, y):
        """Sums over one validation batch: `(loss * batch size, correct)` (as `evaluate`)."""
        out, _, losses = self.model.stateless_call(tv, ntv, x, training=False, return_losses=True)
        loss = self._loss_fn(y, out)
        for extra in losses:
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss * ops.cast(ops.shape(x)[0], loss.dtype), self._hits(y, out)

    def _val_batches(self):
        bs, n = self.batch_size, len(self.x_val)
        return [(self.x_val[i : i + bs], self.y_val[i : i + bs]) for i in range(0, n, bs)]

    # -- JAX ----------------------------------------------------------------------------------

    def _build_jax(self):
        import jax
        import jax.numpy as jnp

        x, y = jnp.asarray(self.x), jnp.asarray(self.y)
        n, bs = len(self.x), self.batch_size
        nb = n // bs
        val = [tuple(jnp.asarray(a) for a in b) for b in self._val_batches()]
        n_val = len(self.x_val)

        def adam(tv, grads, m, v, t, lr):
            new_tv, new_m, new_v = [], [], []
            for w, g, mi, vi, constraint in zip(tv, grads, m, v, self._constraints, strict=True):
                g = ops.cast(g, w.dtype)
                alpha = _adam_scalars(t, lr, w.dtype)
                mi = mi + (g - mi) * (1 - ADAM_BETA_1)
                vi = vi + (ops.square(g) - vi) * (1 - ADAM_BETA_2)
                w = w - (mi * alpha) / (ops.sqrt(vi) + ADAM_EPSILON)
                new_tv.append(w if constraint is None else constraint(w))
                new_m.append(mi)
                new_v.append(vi)
            return new_tv, new_m, new_v

        def step(carry, batch):
            tv, ntv, m, v, t, lr, loss_sum, hits = carry
            xb, yb = batch
            (loss, (ntv, out)), grads = jax.value_and_grad(self._loss, has_aux=True)(tv, ntv, xb, yb)
            tv, m, v = adam(tv, grads, m, v, t, lr)
            size = xb.shape[0]
            return (tv, ntv, m, v, t + 1, lr, loss_sum + loss * size, hits + self._hits(yb, out)), None

        def epoch(state, order, lr):
            tv, ntv, m, v, t = state
            xs, ys = x[order], y[order]
            carry = (tv, ntv, m, v, t, lr, jnp.zeros(()), jnp.zeros(()))
            if nb:
                full = (
                    xs[: nb * bs].reshape((nb, bs) + x.shape[1:]),
                    ys[: nb * bs].reshape((nb, bs) + y.shape[1:]),
                )
                carry, _ = jax.lax.scan(step, carry, full)
            if nb * bs < n:
                carry, _ = step(carry, (xs[nb * bs :], ys[nb * bs :]))
            tv, ntv, m, v, t, _, loss_sum, hits = carry
            val_loss, val_hits = jnp.zeros(()), jnp.zeros(())
            for xb, yb in val:
                a, b = self._eval_sums(tv, ntv, xb, yb)
                val_loss, val_hits = val_loss + a, val_hits + b
            logs = (loss_sum / n, hits / n, val_loss / n_val, val_hits / n_val)
            return (tv, ntv, m, v, t), logs

        run = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0)))

        def start(tv, ntv):
            zeros = [jnp.zeros_like(w) for w in tv]
            return (tv, ntv, zeros, [jnp.zeros_like(w) for w in tv], jnp.zeros((len(tv[0]),), "int32"))

        return start, lambda state, order, lr: run(state, jnp.asarray(order), jnp.asarray(lr, "float32"))

    # -- PyTorch ------------------------------------------------------------------------------

    def _build_torch(self):
        import torch

        device = ops.convert_to_tensor(np.zeros(1, "float32")).device
        x, y = torch.as_tensor(self.x, device=device), torch.as_tensor(self.y, device=device)
        n, bs = len(self.x), self.batch_size
        val = [tuple(torch.as_tensor(a, device=device) for a in b) for b in self._val_batches()]
        n_val = len(self.x_val)
        grad = torch.func.vmap(
            torch.func.grad_and_value(self._loss, has_aux=True), in_dims=(0, 0, 0, 0), randomness="error"
        )
        evaluate = torch.func.vmap(self._eval_sums, in_dims=(0, 0, None, None), randomness="error")
        constrained = [i for i, c in enumerate(self._constraints) if c is not None]
        constrain = torch.func.vmap(
            lambda ws: [self._constraints[i](w) for i, w in zip(constrained, ws, strict=True)]
        )

        def epoch(state, order, lr):
            tv, ntv, m, v, t = state
            order = torch.as_tensor(order, device=device)
            lr = torch.as_tensor(lr, dtype=torch.float32, device=device)
            loss_sum = torch.zeros(len(lr), device=device)
            hits = torch.zeros(len(lr), device=device)
            with torch.no_grad():
                for s in range(0, n, bs):
                    idx = order[:, s : s + bs]
                    xb, yb = x[idx], y[idx]
                    grads, (loss, (ntv, out)) = grad(tv, ntv, xb, yb)
                    ntv = list(ntv)
                    loss_sum += loss.float() * idx.shape[1]
                    hits += keras.metrics.sparse_categorical_accuracy(yb, out).sum(dim=-1)
                    # Keras' torch Adam (torch_adam.py), each member with its own learning rate
                    alpha = _adam_scalars(t, lr, tv[0].dtype)
                    torch._foreach_mul_(m, ADAM_BETA_1)
                    torch._foreach_add_(m, grads, alpha=1 - ADAM_BETA_1)
                    torch._foreach_mul_(v, ADAM_BETA_2)
                    torch._foreach_add_(v, torch._foreach_mul(grads, grads), alpha=1 - ADAM_BETA_2)
                    denom = torch._foreach_add(torch._foreach_sqrt(v), ADAM_EPSILON)
                    steps = [
                        mi * alpha.reshape((-1,) + (1,) * (mi.dim() - 1)) / d
                        for mi, d in zip(m, denom, strict=True)
                    ]
                    tv = list(torch._foreach_sub(tv, steps))
                    if constrained:
                        for i, w in zip(constrained, constrain([tv[i] for i in constrained]), strict=True):
                            tv[i] = w
                    t = t + 1
                val_loss = torch.zeros(len(lr), device=device)
                val_hits = torch.zeros(len(lr), device=device)
                for xb, yb in val:
                    a, b = evaluate(tv, ntv, xb, yb)
                    val_loss += a
                    val_hits += b
            logs = (loss_sum / n, hits / n, val_loss / n_val, val_hits / n_val)
            return (tv, ntv, m, v, t), logs

        def start(tv, ntv):
            tv = [torch.as_tensor(w, device=device).clone() for w in tv]
            ntv = [torch.as_tensor(w, device=device).clone() for w in ntv]
            return (tv, ntv, [torch.zeros_like(w) for w in tv], [torch.zeros_like(w) for w in tv], 0)

        return start, epoch

    # -- driving ------------------------------------------------------------------------------

    def fit(self, starts, learning_rates, orders):
        """Train the members; a generator of `(epoch, logs)` after each epoch, `logs` mapping
        `loss`, `accuracy`, `val_loss`, `val_accuracy` to `(P,)` arrays (float64), as the
        Keras logs of each member's own fit. Stop iterating to stop training.

        Args:
            starts: one `(trainable values, non-trainable values)` pair of lists per member,
                in the order of the model's variables (`P` members, at most `size`).
            learning_rates: `(P,)` Adam learning rates.
            orders: `(P, epochs, len(x))` sample orders (`fit_orders` of each member's seed).
        """
        count = len(starts)
        if not 1 <= count <= self.size:
            raise ValueError(f"PopulationFit: 1 to {self.size} members per call, got {count}.")
        learning_rates = np.asarray(learning_rates, "float32").reshape(count)
        orders = np.asarray(orders, "int32")
        if orders.shape != (count, self.epochs, len(self.x)):
            want = (count, self.epochs, len(self.x))
            raise ValueError(f"PopulationFit: `orders` must be of shape {want}, got {orders.shape}.")
        if self._epoch is None:
            build = self._build_jax if self.backend == "jax" else self._build_torch
            self._start, self._epoch = build()
        pad = self.size - count if self.backend == "jax" else 0  # one compiled shape
        members = list(starts) + [starts[0]] * pad
        learning_rates = np.concatenate([learning_rates, np.repeat(learning_rates[:1], pad)])
        orders = np.concatenate([orders, np.repeat(orders[:1], pad, axis=0)])
        tv, ntv = (
            [np.stack([np.asarray(member[k][j]) for member in members]) for j in range(len(members[0][k]))]
            for k in (0, 1)
        )
        state = self._start(tv, ntv)
        for e in range(self.epochs):
            state, logs = self._epoch(state, orders[:, e], learning_rates)
            yield (
                e,
                {
                    key: np.asarray(ops.convert_to_numpy(value), "float64")[:count]
                    for key, value in zip(self.KEYS, logs, strict=True)
                },
            )
