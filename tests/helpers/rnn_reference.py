"""NumPy references for the keras-bioact recurrent cells (float64)."""

import numpy as np


def gamma(a, n, s):
    return (1.0 - s) * np.logaddexp(0.0, n * a) / n + s / (1.0 + np.exp(-n * a))


def elman(x, kernel, recurrent, bias, n=None, s=None, activation=None, drive=None, h0=None):
    """Outputs (batch, T, units) of h_t = f(x_t K + h_{t-1} R + b + drive_t)."""
    batch, steps, _ = x.shape
    h = np.zeros((batch, recurrent.shape[0])) if h0 is None else h0
    out = []
    for t in range(steps):
        a = x[:, t] @ kernel + h @ recurrent + bias
        if drive is not None:
            a = a + drive[:, t]
        h = activation(a) if activation is not None else gamma(a, n, s)
        out.append(h)
    return np.stack(out, 1)


def anru(x, w, n_min=0.01, drive=None):
    """ANRU of SPEC 3.2 with weights dict `w`; returns (h, n, s), each (batch, T, units), and g_T."""
    batch, steps, _ = x.shape
    units = w["recurrent_kernel"].shape[0]
    m = w["controller_recurrent_kernel"].shape[0]
    h = np.zeros((batch, units))
    g = np.zeros((batch, units, m))
    hs, ns, ss = [], [], []
    for t in range(steps):
        a = x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
        if drive is not None:
            a = a + drive[:, t]
        for i in range(units):  # deliberately per neuron: the reference of the vectorised cell
            g[:, i] = np.tanh(
                a[:, i : i + 1] * w["controller_input_kernel"][0]
                + g[:, i] @ w["controller_recurrent_kernel"]
                + w["controller_bias"]
            )
        n = np.maximum(g @ w["n_kernel"][:, 0] + w["n_bias"][0], n_min)
        s = g @ w["s_kernel"][:, 0] + w["s_bias"][0]
        h = gamma(a, n, s)
        hs.append(h)
        ns.append(n)
        ss.append(s)
    return np.stack(hs, 1), np.stack(ns, 1), np.stack(ss, 1), g
