"""Robustness of a trained classifier: Gaussian input noise, FGSM and PGD (L-infinity) attacks.

Every function takes a Keras classifier `model` (outputs class scores: logits or probabilities),
inputs `x` (NumPy, any shape the model accepts; values usually in [0, 1]) and integer labels `y`,
and works on the TensorFlow, JAX and PyTorch backends. The attacks are written with `keras.ops`;
only the input gradient uses the backend's own autodiff (`jax.grad`, `tf.GradientTape`,
`torch.autograd.grad`).

* `noise_sweep`: accuracy under additive Gaussian noise `x + sigma * N(0, 1)` (clipped to the
  input range) for increasing `sigma`.
* `fgsm`, `pgd`: adversarial examples inside the L-infinity ball `|x_adv - x| <= eps`, clipped to
  the input range. FGSM (Goodfellow et al. 2015) is one signed-gradient step of size `eps`; PGD
  (Madry et al. 2018) takes `steps` signed-gradient steps of size `step_size` from a random start
  in the ball, projecting back into the ball (and the input range) after each step.
* `attack_sweep`: accuracy under FGSM or PGD for increasing `eps`.
* `evaluate`: all three sweeps at once, returned as a dict of `RobustnessTable`s;
  `format_tables` pretty-prints them.

Everything is deterministic given `seed` (noise and PGD random starts come from NumPy generators).
With `eps = 0` (or `sigma = 0`) the accuracy equals the clean accuracy.
"""

import dataclasses
import weakref

import keras
import numpy as np
from keras import ops

__all__ = [
    "RobustnessTable",
    "accuracy",
    "attack_sweep",
    "evaluate",
    "fgsm",
    "format_tables",
    "input_gradient_fn",
    "noise_sweep",
    "pgd",
]

# model -> {(loss, from_logits): jitted input gradient}; avoids recompiling per sweep (JAX).
_JAX_GRAD_CACHE = weakref.WeakKeyDictionary()

DEFAULT_NOISE = (0.0, 0.1, 0.2, 0.3, 0.5)
DEFAULT_EPSILONS = (0.0, 0.01, 0.02, 0.05, 0.1)


@dataclasses.dataclass
class RobustnessTable:
    """Accuracy versus perturbation strength for one kind of perturbation.

    Attributes:
        attack: `"gaussian_noise"`, `"fgsm"` or `"pgd"`.
        strengths: noise standard deviations or L-infinity radii `eps`, increasing.
        accuracies: accuracy (fraction correct) at each strength.
        settings: the other settings (steps, step size, seed, clip range, ...).
    """

    attack: str
    strengths: list
    accuracies: list
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def strength_name(self):
        return "sigma" if self.attack == "gaussian_noise" else "eps"

    def rows(self):
        """The table as a list of dicts `{"attack", "strength", "accuracy"}`."""
        return [
            {"attack": self.attack, "strength": float(s), "accuracy": float(a)}
            for s, a in zip(self.strengths, self.accuracies, strict=True)
        ]

    def to_dict(self):
        return {
            "attack": self.attack,
            "strengths": [float(s) for s in self.strengths],
            "accuracies": [float(a) for a in self.accuracies],
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, d):
        return cls(d["attack"], list(d["strengths"]), list(d["accuracies"]), dict(d.get("settings", {})))

    def format(self):
        """A small text table, one line per strength."""
        lines = [f"{self.attack} ({', '.join(f'{k}={v}' for k, v in self.settings.items())})"]
        lines.append(f"  {self.strength_name:>8}  accuracy")
        for s, a in zip(self.strengths, self.accuracies, strict=True):
            lines.append(f"  {s:>8.4g}  {a:8.4f}")
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def format_tables(tables):
    """Pretty-print a dict (or list) of `RobustnessTable`s."""
    if isinstance(tables, dict):
        tables = list(tables.values())
    return "\n\n".join(t.format() for t in tables)


# ----------------------------------------------------------------------------------------------
# Helpers


def _check_inputs(x, y, name):
    x = np.asarray(x)
    y = np.asarray(y).astype("int32").reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{name}: `x` ({len(x)} samples) and `y` ({len(y)} labels) differ in length.")
    if len(x) == 0:
        raise ValueError(f"{name}: `x` is empty.")
    return x.astype("float32"), y


def _check_clip(clip, name):
    if clip is None:
        return None
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise ValueError(f"{name}: `clip` must be (low, high) with low < high, got {clip}.")
    return lo, hi


def _check_batch_size(batch_size, name):
    if int(batch_size) < 1:
        raise ValueError(f"{name}: `batch_size` must be >= 1, got {batch_size}.")
    return int(batch_size)


def _infer_from_logits(model):
    """True unless the model's last layer ends in a softmax/sigmoid (then it outputs probabilities)."""
    layers = getattr(model, "layers", None)
    last = layers[-1] if layers else model
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "") if activation is not None else ""
    if isinstance(last, keras.layers.Softmax):
        return False
    return name not in ("softmax", "sigmoid", "log_softmax")


def _loss_fn(model, loss, from_logits):
    """A function `(y, scores) -> scalar` summed over the batch."""
    if loss is not None:
        if not callable(loss):
            raise ValueError(f"`loss` must be callable as loss(y_true, y_pred), got {loss!r}.")

        def fn(y, out):
            return ops.sum(loss(y, out))

        return fn
    if from_logits is None:
        from_logits = _infer_from_logits(model)

    def fn(y, out):
        return ops.sum(keras.losses.sparse_categorical_crossentropy(y, out, from_logits=bool(from_logits)))

    return fn


def input_gradient_fn(model, loss=None, from_logits=None):
    """Return `grad(x, y)`: the gradient of the summed classification loss with respect to `x`.

    Uses the backend's autodiff: `jax.grad` (jit-compiled, over `model.stateless_call`),
    `tf.GradientTape` or `torch.autograd.grad`. The model runs with `training=False`; its
    weights are not changed and no weight gradients are kept.

    Args:
        model: a Keras model returning class scores.
        loss: optional `loss(y_true, y_pred)` returning per-sample losses; default the sparse
            categorical cross-entropy.
        from_logits: whether the model outputs logits; `None` infers it from the last layer
            (a softmax/sigmoid activation means probabilities).
    """
    if loss is None and from_logits is None:
        from_logits = _infer_from_logits(model)
    loss_fn = _loss_fn(model, loss, from_logits)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        cache = _JAX_GRAD_CACHE.setdefault(model, {})
        key = (loss, from_logits)
        if key not in cache:

            def loss_of_x(x, y, trainable, non_trainable):
                out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
                return loss_fn(y, out)

            cache[key] = jax.jit(jax.grad(loss_of_x))
        grad = cache[key]

        def grad_jax(x, y):
            # Read the variables at each call: Keras' own jitted steps may replace their buffers.
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return grad(x, y, trainable, non_trainable)

        return grad_jax
    if backend == "tensorflow":
        import tensorflow as tf

        def grad_tf(x, y):
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss_value = loss_fn(y, model(x, training=False))
            return tape.gradient(loss_value, x)

        return grad_tf
    if backend == "torch":
        import torch

        def grad_torch(x, y):
            x = ops.convert_to_tensor(x).detach().clone().requires_grad_(True)
            with torch.enable_grad():
                loss_value = loss_fn(y, model(x, training=False))
                (g,) = torch.autograd.grad(loss_value, [x])
            return g.detach()

        return grad_torch
    raise NotImplementedError(f"keras_bioact.robustness: backend {backend!r} is not supported.")


def _predict_labels(model, x, batch_size):
    n = len(x)
    if n > batch_size and n % batch_size:
        # Pad to whole batches so a compiled predict function sees one batch shape.
        x = np.concatenate([x, x[: batch_size - n % batch_size]])
    scores = model.predict(x, batch_size=batch_size, verbose=0)
    return np.argmax(np.asarray(scores).reshape(len(x), -1)[:n], axis=-1)


def accuracy(model, x, y, batch_size=256):
    """Fraction of `x` the model classifies as `y`."""
    x, y = _check_inputs(x, y, "accuracy")
    return float(np.mean(_predict_labels(model, x, _check_batch_size(batch_size, "accuracy")) == y))


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


# ----------------------------------------------------------------------------------------------
# Attacks


def pgd(
    model,
    x,
    y,
    eps,
    steps=10,
    step_size=None,
    random_start=True,
    seed=0,
    clip=(0.0, 1.0),
    batch_size=256,
    loss=None,
    from_logits=None,
    grad_fn=None,
):
    """Projected gradient descent (L-infinity) adversarial examples.

    `x_{k+1} = Proj(x_k + step_size * sign(grad_x loss(model(x_k), y)))`, where `Proj` clips to
    the ball `[x - eps, x + eps]` and then to `clip`. Starts from `x + U(-eps, eps)` when
    `random_start` (projected the same way), else from `x`.

    Args:
        model: a Keras classifier (logits or probabilities).
        x: inputs, NumPy array.
        y: integer labels.
        eps: L-infinity radius, >= 0.
        steps: number of gradient steps, >= 1.
        step_size: size of each step; default `2.5 * eps / steps` (Madry et al.).
        random_start: start from a uniform random point of the ball.
        seed: seed of the random start.
        clip: `(low, high)` range of valid inputs, or `None` for no range clipping.
        batch_size: inputs per gradient evaluation.
        loss, from_logits: see `input_gradient_fn`.
        grad_fn: optional precomputed `input_gradient_fn(model, ...)` (reused across calls).

    Returns:
        NumPy array of adversarial inputs, same shape as `x`, float32.
    """
    x, y = _check_inputs(x, y, "pgd")
    eps = float(eps)
    if not eps >= 0:
        raise ValueError(f"pgd: `eps` must be >= 0, got {eps}.")
    if int(steps) < 1:
        raise ValueError(f"pgd: `steps` must be >= 1, got {steps}.")
    steps = int(steps)
    step_size = 2.5 * eps / steps if step_size is None else float(step_size)
    if not step_size >= 0:
        raise ValueError(f"pgd: `step_size` must be >= 0, got {step_size}.")
    clip = _check_clip(clip, "pgd")
    batch_size = _check_batch_size(batch_size, "pgd")
    if eps == 0:
        return x.copy() if clip is None else np.clip(x, *clip)
    grad = grad_fn or input_gradient_fn(model, loss=loss, from_logits=from_logits)
    rng = np.random.default_rng(seed)
    out = []
    for sl in _batches(len(x), batch_size):
        xb, yb = x[sl], y[sl]
        n = len(xb)
        if len(x) > batch_size and n < batch_size:
            # Pad the last batch (samples are independent) so a jitted gradient keeps one shape.
            pad = np.arange(batch_size - n) % n
            xb, yb = np.concatenate([xb, xb[pad]]), np.concatenate([yb, yb[pad]])
        x0 = ops.convert_to_tensor(xb)
        yb = ops.convert_to_tensor(yb)
        low, high = x0 - eps, x0 + eps

        def project(xa, low=low, high=high):
            xa = ops.minimum(ops.maximum(xa, low), high)
            return xa if clip is None else ops.clip(xa, clip[0], clip[1])

        if random_start:
            delta = rng.uniform(-eps, eps, size=xb.shape).astype("float32")
            xa = project(x0 + ops.convert_to_tensor(delta))
        else:
            xa = x0
        for _ in range(steps):
            g = ops.convert_to_tensor(grad(xa, yb))
            xa = project(xa + step_size * ops.sign(g))
        out.append(ops.convert_to_numpy(xa)[:n])
    return np.concatenate(out).astype("float32")


def fgsm(model, x, y, eps, clip=(0.0, 1.0), batch_size=256, loss=None, from_logits=None, grad_fn=None):
    """Fast gradient sign method: `clip(x + eps * sign(grad_x loss(model(x), y)))`.

    Same arguments as `pgd` (it is one PGD step of size `eps` without random start).
    """
    return pgd(
        model,
        x,
        y,
        eps,
        steps=1,
        step_size=eps,
        random_start=False,
        clip=clip,
        batch_size=batch_size,
        loss=loss,
        from_logits=from_logits,
        grad_fn=grad_fn,
    )


def _check_strengths(values, name, what):
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"{name}: `{what}` must list at least one value.")
    if any(not v >= 0 for v in values):
        raise ValueError(f"{name}: every value of `{what}` must be >= 0, got {values}.")
    return values


def noise_sweep(model, x, y, sigmas=DEFAULT_NOISE, seed=0, clip=(0.0, 1.0), batch_size=256):
    """Accuracy under additive Gaussian noise `x + sigma * N(0, 1)`, clipped to `clip`.

    Args:
        model: a Keras classifier.
        x, y: inputs and integer labels.
        sigmas: noise standard deviations, each >= 0.
        seed: seed of the noise (one generator per `sigma`, so tables are reproducible).
        clip: `(low, high)` input range, or `None`.
        batch_size: prediction batch size.

    Returns:
        `RobustnessTable` with `attack="gaussian_noise"`.
    """
    x, y = _check_inputs(x, y, "noise_sweep")
    sigmas = _check_strengths(sigmas, "noise_sweep", "sigmas")
    clip = _check_clip(clip, "noise_sweep")
    batch_size = _check_batch_size(batch_size, "noise_sweep")
    accs = []
    for i, sigma in enumerate(sigmas):
        rng = np.random.default_rng([int(seed), i])
        xn = x + sigma * rng.standard_normal(x.shape).astype("float32") if sigma > 0 else x
        if clip is not None:
            xn = np.clip(xn, *clip)
        accs.append(float(np.mean(_predict_labels(model, xn, batch_size) == y)))
    settings = {"seed": int(seed), "clip": None if clip is None else list(clip)}
    return RobustnessTable("gaussian_noise", sigmas, accs, settings)


def attack_sweep(
    model,
    x,
    y,
    epsilons=DEFAULT_EPSILONS,
    attack="fgsm",
    steps=10,
    step_size_factor=2.5,
    random_start=True,
    seed=0,
    clip=(0.0, 1.0),
    batch_size=256,
    loss=None,
    from_logits=None,
):
    """Accuracy under FGSM or PGD for each L-infinity radius in `epsilons`.

    Args:
        attack: `"fgsm"` or `"pgd"`.
        steps, random_start: PGD settings (ignored by FGSM).
        step_size_factor: PGD step size is `step_size_factor * eps / steps`.
        Other arguments as in `pgd`.

    Returns:
        `RobustnessTable` with `attack` set to `"fgsm"` or `"pgd"`.
    """
    if attack not in ("fgsm", "pgd"):
        raise ValueError(f"attack_sweep: `attack` must be 'fgsm' or 'pgd', got {attack!r}.")
    x, y = _check_inputs(x, y, "attack_sweep")
    epsilons = _check_strengths(epsilons, "attack_sweep", "epsilons")
    batch_size = _check_batch_size(batch_size, "attack_sweep")
    grad = input_gradient_fn(model, loss=loss, from_logits=from_logits)
    accs = []
    for eps in epsilons:
        if attack == "fgsm":
            xa = fgsm(model, x, y, eps, clip=clip, batch_size=batch_size, grad_fn=grad)
        else:
            xa = pgd(
                model,
                x,
                y,
                eps,
                steps=steps,
                step_size=step_size_factor * eps / steps,
                random_start=random_start,
                seed=seed,
                clip=clip,
                batch_size=batch_size,
                grad_fn=grad,
            )
        accs.append(float(np.mean(_predict_labels(model, xa, batch_size) == y)))
    settings = {"clip": None if clip is None else [float(c) for c in clip]}
    if attack == "pgd":
        settings.update(
            steps=int(steps),
            step_size_factor=float(step_size_factor),
            random_start=bool(random_start),
            seed=int(seed),
        )
    return RobustnessTable(attack, epsilons, accs, settings)


def evaluate(
    model,
    x,
    y,
    noise=DEFAULT_NOISE,
    fgsm_eps=DEFAULT_EPSILONS,
    pgd_eps=DEFAULT_EPSILONS,
    pgd_steps=10,
    seed=0,
    clip=(0.0, 1.0),
    batch_size=256,
    loss=None,
    from_logits=None,
):
    """Run the Gaussian-noise, FGSM and PGD sweeps; an empty list (or `None`) skips a sweep.

    Returns:
        dict `{"gaussian_noise": table, "fgsm": table, "pgd": table}` of `RobustnessTable`s.
    """
    tables = {}
    if noise:
        tables["gaussian_noise"] = noise_sweep(
            model, x, y, noise, seed=seed, clip=clip, batch_size=batch_size
        )
    for name, eps in (("fgsm", fgsm_eps), ("pgd", pgd_eps)):
        if eps:
            tables[name] = attack_sweep(
                model,
                x,
                y,
                eps,
                attack=name,
                steps=pgd_steps,
                seed=seed,
                clip=clip,
                batch_size=batch_size,
                loss=loss,
                from_logits=from_logits,
            )
    return tables
