"""The mixture search: one `MixtureActivation` per activation site, trained by gradient with the
network (first-order DARTS alternation), shrunk to one candidate per site, then discretized and
retrained from fresh initialisations and scored on the test split.

After Strack, Safari & Hutter (2024, gradient-based activation search), written from the
paper's description. The procedure (`run_mixture`, what `bioact search` runs for a spec with a
`[mixture]` table):

1. Build the model template with a `MixtureActivation` at every activation site
   (`MixtureSites`), warm-started near GELU.
2. Search for `mixture.epochs` epochs. Each step is one *architecture step*, the mixture logits
   (`architecture_variables`) updated by Adam (`mixture.arch_learning_rate`) on a batch of the
   validation split, then one *weight step*, every other trainable variable
   (`network_variables`) updated by Adam (`budget.learning_rate`) on a batch of the training
   split (`alternate_step`). First order: the architecture gradient is taken at the current
   weights, not through a look-ahead step.
3. Progressive shrinking: after each epoch past `mixture.shrink_start`, every site removes its
   lowest-weight candidates so that the number remaining falls linearly to one at the last
   epoch (`remaining_after`).
4. `discretize(model)` replaces every mixture by its chosen candidate as a plain layer; the
   discretized architecture is retrained from fresh initialisations (`mixture.seeds` seeds,
   `budget.seed + 1 + i`, `budget.epochs` epochs on the training split) and scored on the test
   split, as is `mixture.baseline` (the template with that activation everywhere) under the
   same seeds. The per-seed scores are what a verdict compares.

The loop is written with `keras.ops`, `keras.optimizers` and each backend's gradient (JAX:
`jax.value_and_grad` of `model.stateless_call`, compiled; TensorFlow: `tf.GradientTape`;
PyTorch: `torch.autograd.grad`), so it runs on all three backends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from keras_bioact._io import atomic_write
from keras_bioact.layers import MixtureActivation
from keras_bioact.params import walk_layers

__all__ = [
    "MixtureResult",
    "MixtureSites",
    "alternate_step",
    "architecture_variables",
    "discretize",
    "mixture_layers",
    "network_variables",
    "remaining_after",
    "retrain",
    "run_mixture",
    "search",
]

RESULT_FILE = "mixture_result.json"


# ---------------------------------------------------------------------------- the variables


def mixture_layers(model):
    """The `MixtureActivation` layers of `model` (nested models included), in model order."""
    return [layer for layer in walk_layers(model) if isinstance(layer, MixtureActivation)]


def architecture_variables(model):
    """The mixture logits of every `MixtureActivation` of `model`: the variables the
    architecture step optimises (on the validation split)."""
    return [layer.logits for layer in mixture_layers(model)]


def network_variables(model):
    """Every trainable variable of `model` except the mixture logits: what the weight step
    optimises (on the training split)."""
    arch = {id(v) for v in architecture_variables(model)}
    return [v for v in model.trainable_variables if id(v) not in arch]


class MixtureSites:
    """What a model template asks for its activation sites (as `keras_bioact.search.Activation`):
    a `MixtureActivation` with these arguments at every site."""

    family = "mixture"

    def __init__(self, **mixture_kwargs):
        self.kwargs = dict(mixture_kwargs)
        MixtureActivation(**self.kwargs)  # bad arguments fail here, before any model is built

    def layer(self, index=0, name=None, channel_axes=None):
        return MixtureActivation(**self.kwargs, name=name or f"mixture_{index}")

    def dense(self, units, index=0, **dense_kwargs):
        return [keras.layers.Dense(units, **dense_kwargs), self.layer(index)]

    def conv2d(self, filters, kernel_size, index=0, **conv_kwargs):
        return [keras.layers.Conv2D(filters, kernel_size, **conv_kwargs), self.layer(index)]


# ---------------------------------------------------------------------------- the alternation


class Alternation:
    """The first-order alternation on one model: two Adam optimisers, one for the mixture
    logits (`architecture_variables`, learning rate `arch_learning_rate`) and one for every
    other trainable variable (`network_variables`, `learning_rate`), and the compiled step
    `step(train_batch, val_batch)` (see `alternate_step`). The loss is the sparse categorical
    cross-entropy of the model's (softmax) outputs plus its regularisation losses, in training
    mode. JAX: one `jax.jit` of both steps over `model.stateless_call` and the optimisers'
    `stateless_apply`; TensorFlow: one `tf.function` with `tf.GradientTape`; PyTorch: eager,
    `torch.autograd.grad`."""

    def __init__(self, model, learning_rate=1e-3, arch_learning_rate=1e-2):
        self.model = model
        self.arch = architecture_variables(model)
        if not self.arch:
            raise ValueError("mixture search: the model has no MixtureActivation layer")
        self.net = network_variables(model)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy()
        self.arch_optimizer = keras.optimizers.Adam(arch_learning_rate)
        self.net_optimizer = keras.optimizers.Adam(learning_rate)
        self.arch_optimizer.build(self.arch)
        self.net_optimizer.build(self.net)
        self.backend = keras.backend.backend()
        if self.backend == "jax":
            self._step = self._jax_step()
        elif self.backend == "tensorflow":
            import tensorflow as tf

            self._step = tf.function(self._eager_step, reduce_retracing=True)
        elif self.backend == "torch":
            self._step = self._eager_step
        else:
            raise ValueError(
                f"mixture search: no gradient for backend {self.backend!r}; use jax, tensorflow or torch"
            )

    def step(self, train_batch, val_batch):
        """One architecture step on `val_batch`, then one weight step on `train_batch`;
        returns the two losses `(train_loss, val_loss)` (floats)."""
        train_loss, val_loss = self._step(*train_batch, *val_batch)
        return float(keras.ops.convert_to_numpy(train_loss)), float(keras.ops.convert_to_numpy(val_loss))

    # -- TensorFlow and PyTorch: the variables are updated in place
    def _loss(self, x, y):
        loss = self.loss_fn(y, self.model(x, training=True))
        for extra in self.model.losses:
            loss = loss + extra
        return loss

    def _gradients(self, x, y, variables):
        if self.backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = self._loss(x, y)
            return loss, tape.gradient(loss, variables)
        import torch

        loss = self._loss(x, y)
        return loss.detach(), list(torch.autograd.grad(loss, [v.value for v in variables]))

    def _eager_step(self, xt, yt, xv, yv):
        val_loss, grads = self._gradients(xv, yv, self.arch)
        self.arch_optimizer.apply(grads, self.arch)
        train_loss, grads = self._gradients(xt, yt, self.net)
        self.net_optimizer.apply(grads, self.net)
        return train_loss, val_loss

    # -- JAX: a pure function of the variables' values, compiled once
    def _jax_step(self):
        import jax

        model, loss_fn = self.model, self.loss_fn
        position = {id(v): i for i, v in enumerate(model.trainable_variables)}
        arch_pos = [position[id(v)] for v in self.arch]
        net_pos = [position[id(v)] for v in self.net]

        def merged(tv, positions, values):
            tv = list(tv)
            for p, value in zip(positions, values, strict=True):
                tv[p] = value
            return tv

        def loss_of(values, positions, tv, ntv, x, y):
            out, ntv, losses = model.stateless_call(
                merged(tv, positions, values), ntv, x, training=True, return_losses=True
            )
            loss = loss_fn(y, out)
            for extra in losses:
                loss = loss + extra
            return loss, ntv

        def half_step(optimizer, opt_vars, positions, tv, ntv, x, y):
            values = [tv[p] for p in positions]
            (loss, ntv), grads = jax.value_and_grad(loss_of, has_aux=True)(values, positions, tv, ntv, x, y)
            values, opt_vars = optimizer.stateless_apply(opt_vars, grads, values)
            return merged(tv, positions, values), ntv, opt_vars, loss

        def pure(tv, ntv, arch_opt, net_opt, xt, yt, xv, yv):
            tv, ntv, arch_opt, val_loss = half_step(self.arch_optimizer, arch_opt, arch_pos, tv, ntv, xv, yv)
            tv, ntv, net_opt, train_loss = half_step(self.net_optimizer, net_opt, net_pos, tv, ntv, xt, yt)
            return tv, ntv, arch_opt, net_opt, train_loss, val_loss

        compiled = jax.jit(pure)

        def step(xt, yt, xv, yv):
            groups = (
                model.trainable_variables,
                model.non_trainable_variables,
                self.arch_optimizer.variables,
                self.net_optimizer.variables,
            )
            *values, train_loss, val_loss = compiled(*([v.value for v in g] for g in groups), xt, yt, xv, yv)
            for group, new in zip(groups, values, strict=True):
                for variable, value in zip(group, new, strict=True):
                    variable.assign(value)
            return train_loss, val_loss

        return step


def alternate_step(alternation, train_batch, val_batch):
    """First-order DARTS step of `alternation` (an `Alternation`): the mixture logits take one
    Adam step on the validation batch `val_batch`, then the network weights one Adam step on the
    training batch `train_batch`. Each step changes only its own variables."""
    return alternation.step(train_batch, val_batch)


# ---------------------------------------------------------------------------- the search


def remaining_after(epoch, k, epochs, shrink_start=0):
    """Candidates each site keeps after epoch `epoch` (1-based) of `epochs`, from `k`: all of
    them up to `shrink_start`, then linearly fewer, one after the last epoch."""
    if epoch <= shrink_start:
        return k
    span = epochs - shrink_start
    return max(1, k - math.ceil((k - 1) * (epoch - shrink_start) / span))


def _batches(n, batch_size, rng):
    """A shuffled epoch of index batches, all of size `min(batch_size, n)` (one compiled step):
    the last batch is filled up from the start of the permutation."""
    size = min(batch_size, n)
    order = rng.permutation(n)
    count = -(-n // size)
    order = np.concatenate([order, order[: count * size - n]])
    return [order[i * size : (i + 1) * size] for i in range(count)]


def _accuracy(model, x, y, batch_size=512):
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(y)))


def search(
    model,
    train,
    val,
    *,
    epochs,
    batch_size=64,
    learning_rate=1e-3,
    arch_learning_rate=1e-2,
    shrink_start=0,
    seed=0,
    log=None,
):
    """Run the alternation with progressive shrinking on `model` (built, with
    `MixtureActivation` layers) for `epochs` epochs over `train` (`(x, y)`); the validation
    batches cycle through `val`. Returns the history: one dict per epoch (losses, validation
    accuracy, each site's weights and remaining candidates)."""
    alternation = Alternation(model, learning_rate, arch_learning_rate)
    layers = mixture_layers(model)
    rng = np.random.default_rng(seed)
    (xt, yt), (xv, yv) = train, val
    history = []
    for epoch in range(1, epochs + 1):
        train_batches = _batches(len(xt), batch_size, rng)
        val_batches = _batches(len(xv), batch_size, rng)
        losses = []
        for i, idx in enumerate(train_batches):
            vidx = val_batches[i % len(val_batches)]
            losses.append(alternation.step((xt[idx], yt[idx]), (xv[vidx], yv[vidx])))
        for layer in layers:
            layer.shrink(remaining_after(epoch, len(layer.candidates), epochs, shrink_start))
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean([t for t, _ in losses])),
            "val_loss": float(np.mean([v for _, v in losses])),
            "val_accuracy": _accuracy(model, xv, yv),
            "sites": {
                layer.name: {
                    "weights": dict(zip(layer.candidates, map(float, layer.weights_numpy()), strict=True)),
                    "remaining": list(layer.remaining),
                }
                for layer in layers
            },
        }
        history.append(row)
        if log:
            left = ", ".join(f"{layer.name}: {'/'.join(layer.remaining)}" for layer in layers)
            log(
                f"search epoch {epoch}/{epochs}: train loss {row['train_loss']:.4f}, "
                f"val accuracy {row['val_accuracy']:.4f}; {left}"
            )
    return history


# ---------------------------------------------------------------------------- discretize


def discretize(model, keep_weights=True):
    """A new model with every `MixtureActivation` replaced by its chosen candidate as a plain
    layer (`MixtureActivation.chosen_layer`), same layer names. With `keep_weights` every other
    layer gets `model`'s weights (a one-hot mixture then computes the same function); without,
    the new model has fresh initial weights (seed them with `keras.utils.set_random_seed`)."""

    def clone(layer):
        if isinstance(layer, MixtureActivation):
            return layer.chosen_layer(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    if keep_weights:
        for old, fresh in zip(walk_layers(model), walk_layers(new), strict=True):
            if isinstance(old, MixtureActivation) or isinstance(old, keras.Model):
                continue
            if type(old) is not type(fresh):
                raise ValueError(f"discretize: layer {old.name!r} cloned as {type(fresh).__name__}")
            fresh.set_weights(old.get_weights())
    return new


def retrain(build, splits, seeds, *, epochs, batch_size, learning_rate, jit_compile="auto"):
    """Train `build()` (a new model each call) from the initialisation of each seed of `seeds`
    on the training split and score it on the validation and test splits. Returns
    `[{"seed", "val_accuracy", "test_accuracy", "test_loss"}]`, one per seed."""
    out = []
    (xt, yt), (xv, yv), (xs, ys) = splits["train"], splits["val"], splits["test"]
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        model = build()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
        model.fit(xt, yt, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
        test_loss, test_accuracy = model.evaluate(xs, ys, batch_size=512, verbose=0)
        out.append(
            {
                "seed": int(seed),
                "val_accuracy": _accuracy(model, xv, yv),
                "test_accuracy": float(test_accuracy),
                "test_loss": float(test_loss),
            }
        )
    return out


# ---------------------------------------------------------------------------- the spec


@dataclasses.dataclass
class MixtureResult:
    """What `run_mixture` returns: `chosen` (`{site layer name: candidate}`), `history` (per
    search epoch), `retrained` and `baseline` (per-seed scores of the discretized architecture
    and of the baseline activation, `retrain`'s rows), `model` (the searched model, mixtures
    shrunk), `discretized` (the discretized model with the searched weights), `result_path`."""

    chosen: dict
    history: list
    retrained: list
    baseline: list
    model: object = None
    discretized: object = None
    result_path: str | None = None
    summary: dict = dataclasses.field(default_factory=dict)
    verdict: object = None

    @property
    def test_scores(self):
        return [row["test_accuracy"] for row in self.retrained]


def _mean(rows, key):
    return float(np.mean([r[key] for r in rows])) if rows else None


def run_mixture(spec, progress=True, log=print):
    """Run the mixture search of a `[mixture]` spec end to end (see the module docstring);
    writes `mixture_result.json` to `output.dir` and returns a `MixtureResult`."""
    from keras_bioact.search import data
    from keras_bioact.search.templates import resolve_template

    mix, budget = spec.mixture, spec.budget
    splits = data.load_splits(spec)
    input_shape, num_classes = data.shape_and_classes(splits)
    template = resolve_template(spec.template)

    def build(activation):
        return template(activation, input_shape=input_shape, num_classes=num_classes, **spec.template_options)

    sites = MixtureSites(
        candidates=mix["candidates"],
        warm_start=None if mix["warm_start"] == "none" else mix["warm_start"],
        warm_weight=mix["warm_weight"],
        temperature=mix["temperature"],
    )
    keras.utils.set_random_seed(budget.seed)
    model = build(sites)
    start = time.perf_counter()
    history = search(
        model,
        splits["train"],
        splits["val"],
        epochs=mix["epochs"],
        batch_size=budget.batch_size,
        learning_rate=budget.learning_rate,
        arch_learning_rate=mix["arch_learning_rate"],
        shrink_start=mix["shrink_start"],
        seed=budget.seed,
        log=log if progress else None,
    )
    search_seconds = time.perf_counter() - start
    chosen = {layer.name: layer.chosen for layer in mixture_layers(model)}
    log("chosen activation per layer: " + ", ".join(f"{k}: {v}" for k, v in chosen.items()))
    seeds = [(budget.seed + 1 + i) % 2**32 for i in range(mix["seeds"])]
    fit = dict(
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        learning_rate=budget.learning_rate,
        jit_compile=budget.jit_compile,
    )
    retrained = retrain(lambda: discretize(model, keep_weights=False), splits, seeds, **fit)
    baseline = []
    if mix["baseline"] != "none":
        plain = build(MixtureSites(candidates=[mix["baseline"]], warm_start=None))
        baseline = retrain(lambda: discretize(plain, keep_weights=False), splits, seeds, **fit)
    for label, rows in (("discretized", retrained), (f"baseline {mix['baseline']}", baseline)):
        for row in rows:
            log(
                f"{label}: seed {row['seed']}: test accuracy {row['test_accuracy']:.4f} "
                f"(val {row['val_accuracy']:.4f})"
            )
    verdict = None
    if baseline:
        from keras_bioact.search import verdict as verdict_lib

        verdict = verdict_lib.compare(
            "mixture: " + ", ".join(dict.fromkeys(chosen.values())),
            [row["test_accuracy"] for row in retrained],
            mix["baseline"],
            [row["test_accuracy"] for row in baseline],
            metric="test_accuracy",
            seeds=seeds,
            n_test=int(len(splits["test"][1])),
        )
        for line in verdict.lines():
            log(line)
    summary = {
        "spec": spec.source,
        "backend": keras.backend.backend(),
        "candidates": list(mix["candidates"]),
        "settings": {k: v for k, v in mix.items() if k != "candidates"},
        "chosen": chosen,
        "search_seconds": search_seconds,
        "history": history,
        "retrained": retrained,
        "baseline": {"activation": mix["baseline"], "runs": baseline},
        "test_accuracy_mean": {
            "discretized": _mean(retrained, "test_accuracy"),
            "baseline": _mean(baseline, "test_accuracy"),
        },
        "verdict": None if verdict is None else verdict.to_dict(),
    }
    result = MixtureResult(
        chosen,
        history,
        retrained,
        baseline,
        model=model,
        discretized=discretize(model),
        summary=summary,
        verdict=verdict,
    )
    directory = spec.output.get("dir")
    if directory:
        result.result_path = atomic_write(os.path.join(directory, RESULT_FILE), json.dumps(summary, indent=2))
        log(f"result: {result.result_path}")
        if verdict is not None:
            verdict_lib.write_json(verdict, directory)
    return result
