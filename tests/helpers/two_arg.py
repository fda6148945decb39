"""NumPy references and backend gradient helpers for the two-argument tests."""

import keras
import numpy as np
from keras import ops


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def inner_np(inner, pairs):
    """NumPy g on `(..., arity)` -> `(...)`."""
    h = pairs.reshape(-1, inner.arity)
    for i in range(inner.depth):
        h = h @ to_np(getattr(inner, f"kernel_{i}")) + to_np(getattr(inner, f"bias_{i}"))
        if i < inner.depth - 1:
            h = np.maximum(h, 0.0)
    return h.reshape(pairs.shape[:-1])


def layer_norm_np(z, axes, eps=1e-5):
    mean = z.mean(axis=axes, keepdims=True)
    var = ((z - mean) ** 2).mean(axis=axes, keepdims=True)
    return (z - mean) / np.sqrt(var + eps)


def pair_np(z, arity, pairing):
    n = z.shape[-1] // arity
    if arity == 1:
        return z[..., None]
    if pairing == "adjacent":
        return np.stack([z[..., 0::2], z[..., 1::2]], axis=-1)
    return np.stack([z[..., :n], z[..., n:]], axis=-1)


def two_arg_dense_np(layer, x):
    z = x @ to_np(layer.kernel) + to_np(layer.bias)
    if layer.normalize:
        z = layer_norm_np(z, -1, layer.epsilon)
    return inner_np(layer.inner, pair_np(z, layer.arity, layer.pairing))


def conv2d_valid_np(x, kernel):
    """Plain NumPy 'valid' conv, stride 1, channels_last: x (B,H,W,C), kernel (kh,kw,C,F)."""
    kh, kw = kernel.shape[:2]
    b, h, w, _ = x.shape
    out = np.zeros((b, h - kh + 1, w - kw + 1, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,cf->bhwf", x[:, i : i + h - kh + 1, j : j + w - kw + 1, :], kernel[i, j])
    return out


def two_arg_conv_np(layer, x):
    z = conv2d_valid_np(x, to_np(layer.kernel)) + to_np(layer.bias)
    if layer.normalize:
        z = layer_norm_np(z, (1, 2, 3), layer.epsilon)
    return inner_np(layer.inner, pair_np(z, layer.arity, layer.pairing))


def gradients(fn, variables):
    """Gradients of the scalar `fn()` w.r.t. Keras `variables` on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = fn()
        return [
            to_np(g) if g is not None else None for g in tape.gradient(loss, [v.value for v in variables])
        ]
    if backend == "torch":
        for v in variables:
            v.value.grad = None
        loss = fn()
        grads = [
            g
            for g in __import__("torch").autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        ]
        return [to_np(g) if g is not None else None for g in grads]
    if backend == "jax":
        import jax

        originals = [v.value for v in variables]

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return fn()

        grads = jax.grad(pure)(originals)
        return [to_np(g) for g in grads]
    raise NotImplementedError(backend)
