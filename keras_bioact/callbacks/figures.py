"""NumPy curve evaluation and small matplotlib (Agg) figures shared by `ActivationInspector` and
`bioact inspect`. matplotlib is imported inside the functions only."""

import io

import numpy as np

from keras_bioact import reference

# Reference functions drawn next to the learned curves (the papers' comparators).
REFERENCES = {name: reference.activation(name) for name in ("relu", "softplus", "sigmoid", "elu", "tanh")}
_REF_STYLE = {
    "relu": ("0.15", "--"),
    "softplus": ("tab:green", "--"),
    "sigmoid": ("tab:red", ":"),
    "elu": ("tab:purple", "-."),
    "tanh": ("tab:brown", ":"),
}


def new_figure(figsize=(4.0, 3.0), dpi=80, nrows=1, ncols=1, layout="constrained"):
    """A pyplot-free Agg figure (safe in threads and in headless processes) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def figure_to_png(fig):
    """Render a figure to PNG bytes."""
    fig.canvas.draw()
    return canvas_to_png(fig.canvas)


def canvas_to_png(canvas):
    """PNG bytes of what an Agg canvas holds now (fast zlib level 1, RGB)."""
    from PIL import Image

    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "png", compress_level=1)
    return buf.getvalue()


class CurveCanvas:
    """A reusable figure for one layer's curves, redrawn cheaply (Agg blitting).

    The axes, ticks, labels, legend and reference functions are rendered once into a cached
    background; each `render(curves)` restores it and draws only the neuron curves (one
    `LineCollection`) or the quantile bands and median. The y range is fixed at the first
    render and the background is rebuilt only when the curves leave it (or the number of
    neurons changes the drawing mode).
    """

    def __init__(
        self,
        x,
        title="",
        max_lines=64,
        references=("relu", "softplus", "sigmoid", "elu"),
        figsize=(4.0, 3.0),
        dpi=80,
    ):
        self.x = np.asarray(x, dtype="float64")
        self.title = title
        self.max_lines = max_lines
        self.references = tuple(references)
        self.figsize = figsize
        self.dpi = dpi
        self._key = None

    def _setup(self, mode, count, ylim):
        from matplotlib.collections import LineCollection
        from matplotlib.patches import Polygon

        fig, axes = new_figure(self.figsize, self.dpi, layout=None)
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.91)
        ax = axes[0, 0]
        x = self.x
        if mode == "lines":
            alpha = max(0.15, min(0.9, 6.0 / max(count, 1)))
            self._lines = LineCollection([], colors="tab:blue", linewidths=0.7, alpha=alpha, animated=True)
            ax.add_collection(self._lines)
            ax.plot([], [], color="tab:blue", lw=1.0, label=f"{count} neuron(s)")
        else:
            self._outer = Polygon(
                np.zeros((1, 2)), closed=True, color="tab:blue", alpha=0.2, lw=0, animated=True
            )
            self._inner = Polygon(
                np.zeros((1, 2)), closed=True, color="tab:blue", alpha=0.4, lw=0, animated=True
            )
            ax.add_patch(self._outer)
            ax.add_patch(self._inner)
            (self._median,) = ax.plot(x, np.zeros_like(x), color="tab:blue", lw=1.2, animated=True)
            ax.fill_between([], [], [], color="tab:blue", alpha=0.2, lw=0, label="5-95 %")
            ax.fill_between([], [], [], color="tab:blue", alpha=0.4, lw=0, label="25-75 %")
            ax.plot([], [], color="tab:blue", lw=1.2, label=f"median of {count}")
        _decorate(ax, x, self.title, self.references, ylim)
        fig.canvas.draw()
        self._background = fig.canvas.copy_from_bbox(fig.bbox)
        self._fig, self._ax = fig, ax
        self._key = (mode, count, ylim)

    def render(self, curves):
        curves = np.asarray(curves, dtype="float64")
        mode = "lines" if len(curves) <= self.max_lines else "bands"
        lo, hi = _ylim(curves)
        key = self._key
        if key is None or key[:2] != (mode, len(curves)) or lo < key[2][0] or hi > key[2][1]:
            # A generous fixed y range, so that the (costly) background is rarely rebuilt.
            span = hi - lo
            self._setup(mode, len(curves), (lo - 0.15 * span, hi + 0.25 * span))
        canvas, ax, x = self._fig.canvas, self._ax, self.x
        canvas.restore_region(self._background)
        if mode == "lines":
            self._lines.set_segments(np.stack([np.broadcast_to(x, curves.shape), curves], axis=-1))
            ax.draw_artist(self._lines)
        else:
            q05, q25, q50, q75, q95 = _quantiles(curves)
            self._outer.set_xy(np.concatenate([np.stack([x, q05], 1), np.stack([x[::-1], q95[::-1]], 1)]))
            self._inner.set_xy(np.concatenate([np.stack([x, q25], 1), np.stack([x[::-1], q75[::-1]], 1)]))
            self._median.set_ydata(q50)
            for artist in (self._outer, self._inner, self._median):
                ax.draw_artist(artist)
        return canvas_to_png(canvas)


def _quantiles(curves, qs=(0.05, 0.25, 0.5, 0.75, 0.95)):
    """Quantiles over neurons (axis 0) by one sort (nearest rank; much faster than nanquantile)."""
    ordered = np.sort(np.nan_to_num(curves, nan=0.0, posinf=1e30, neginf=-1e30), axis=0)
    idx = np.round(np.asarray(qs) * (len(ordered) - 1)).astype(int)
    return ordered[idx]


def _ylim(curves):
    finite = curves[np.isfinite(curves)]
    if not finite.size:
        return -1.1, 1.1
    lo, hi = np.percentile(finite, [0.5, 99.5])
    return min(float(lo), -1.1), max(float(hi), 1.1)


def _decorate(ax, x, title, references, ylim):
    for name in references:
        color, style = _REF_STYLE.get(name, ("0.5", "--"))
        ax.plot(x, REFERENCES[name](x), color=color, ls=style, lw=0.9, label=name)
    ax.set_ylim(*ylim)
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.axhline(0.0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0.0, color="0.8", lw=0.5, zorder=0)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=5, loc="upper left", frameon=False)


def plot_curves(ax, x, curves, title="", max_lines=64, references=("relu", "softplus", "sigmoid", "elu")):
    """Draw a population of activation curves.

    Args:
        ax: matplotlib axes.
        x: (G,) input grid.
        curves: (P, G) one curve per neuron.
        title: axes title.
        max_lines: up to this many neurons, one thin line each; above it, the median and the
            5-95 % and 25-75 % quantile bands over neurons.
        references: names from `REFERENCES` drawn dashed for comparison.
    """
    curves = np.asarray(curves, dtype="float64")
    finite = curves[np.isfinite(curves)]
    if len(curves) <= max_lines:
        alpha = max(0.15, min(0.9, 6.0 / max(len(curves), 1)))
        ax.plot(x, curves.T, color="tab:blue", lw=0.7, alpha=alpha)
        ax.plot([], [], color="tab:blue", lw=1.0, label=f"{len(curves)} neuron(s)")
    else:
        q05, q25, q50, q75, q95 = np.nanquantile(curves, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        ax.fill_between(x, q05, q95, color="tab:blue", alpha=0.2, lw=0, label="5-95 %")
        ax.fill_between(x, q25, q75, color="tab:blue", alpha=0.4, lw=0, label="25-75 %")
        ax.plot(x, q50, color="tab:blue", lw=1.2, label=f"median of {len(curves)}")
    for name in references:
        color, style = _REF_STYLE.get(name, ("0.5", "--"))
        ax.plot(x, REFERENCES[name](x), color=color, ls=style, lw=0.9, label=name)
    if finite.size:
        lo = min(float(np.quantile(finite, 0.005)), -1.1) - 0.15
        hi = max(float(np.quantile(finite, 0.995)), 1.1) + 0.15
        ax.set_ylim(lo, hi)
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.axhline(0.0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0.0, color="0.8", lw=0.5, zorder=0)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("x", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=5, loc="upper left", frameon=False)


def curves_png(
    x,
    curves,
    title="",
    max_lines=64,
    references=("relu", "softplus", "sigmoid", "elu"),
    figsize=(4.0, 3.0),
    dpi=80,
):
    fig, axes = new_figure(figsize, dpi)
    plot_curves(axes[0, 0], x, curves, title, max_lines, references)
    return figure_to_png(fig)


def plot_trajectories(axes, n_t, s_t, title="", max_lines=16):
    """Draw n_t and s_t of one probe sequence over time.

    Args:
        axes: two matplotlib axes (n_t, s_t).
        n_t, s_t: (T, N) per-time-step, per-neuron values for one sequence.
        title: figure title prefix.
        max_lines: individual neurons drawn as thin lines (a fixed spread of neuron indices),
            on top of the median and 5-95 % band over neurons.
    """
    for ax, values, name in ((axes[0], n_t, "n_t"), (axes[1], s_t, "s_t")):
        values = np.asarray(values, dtype="float64")
        t = np.arange(values.shape[0])
        q05, q50, q95 = np.nanquantile(values, [0.05, 0.5, 0.95], axis=1)
        ax.fill_between(t, q05, q95, color="tab:orange", alpha=0.25, lw=0, label="5-95 % of neurons")
        idx = np.unique(np.linspace(0, values.shape[1] - 1, min(max_lines, values.shape[1])).astype(int))
        ax.plot(t, values[:, idx], color="tab:orange", lw=0.5, alpha=0.5)
        ax.plot(t, q50, color="tab:red", lw=1.2, label="median")
        ax.set_ylabel(name, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5, loc="upper right", frameon=False)
    axes[1].set_xlabel("time step", fontsize=7)
    axes[0].set_title(title, fontsize=8)


def trajectories_png(n_t, s_t, title="", max_lines=16, figsize=(4.0, 3.6), dpi=80):
    fig, axes = new_figure(figsize, dpi, nrows=2, ncols=1)
    plot_trajectories(axes[:, 0], n_t, s_t, title, max_lines)
    return figure_to_png(fig)


def parameters_png(values, title="", figsize=(4.0, 2.2), dpi=80):
    """Histograms of a layer's activation parameters (`values`: {name: array}), side by side."""
    names = list(values)
    fig, axes = new_figure(
        (figsize[0] * max(1, len(names)) / 2 + 1.0, figsize[1]), dpi, 1, max(1, len(names))
    )
    for ax, name in zip(axes[0], names, strict=False):
        v = np.asarray(values[name], dtype="float64").reshape(-1)
        v = v[np.isfinite(v)]
        ax.hist(v, bins=min(30, max(1, v.size)), color="tab:blue", alpha=0.8)
        ax.set_title(f"{title} {name}" if title else name, fontsize=8)
        ax.tick_params(labelsize=6)
    return figure_to_png(fig)


def plot_surface(ax, a, b, g, title=""):
    """Heatmap plus contour lines of g(a, b) on the grid (a, b) (g of shape (len(b), len(a)))."""
    extent = (float(a[0]), float(a[-1]), float(b[0]), float(b[-1]))
    vmax = float(np.nanmax(np.abs(g))) or 1.0
    im = ax.imshow(g, origin="lower", extent=extent, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.contour(a, b, g, levels=7, colors="k", linewidths=0.4)
    ax.figure.colorbar(im, ax=ax, shrink=0.85).ax.tick_params(labelsize=6)
    ax.set_xlabel("a", fontsize=7)
    ax.set_ylabel("b", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)


def surface_png(a, b, g, title="", figsize=(3.6, 3.0), dpi=80):
    fig, axes = new_figure(figsize, dpi)
    plot_surface(axes[0, 0], a, b, g, title)
    return figure_to_png(fig)
