"""Shape analysis of learned two-argument nonlinearities g(a, b) (Yoon et al. 2021).

* `surface(inner, grid=...)`: g on a grid.
* `xor_score(inner, ...)`: how much g looks like a soft XOR (a saddle, g ~ a*b), with the
  formula below.
* `plot_surface(inner, ...)`: a heat map + contour plot (matplotlib figure, Agg-safe, PNG).

`inner` may be an `InnerNonlinearity` (or any Keras layer mapping `(..., 2)` to `(..., 1)`),
or a Python function `f(a, b)` of NumPy arrays.

The soft-XOR score
------------------
g is sampled on a polar grid around the centre: radii `r_k = radius * (k + 1/2) / n_radii`,
angles `theta_j = 2 pi j / n_angles`. Two numbers are computed:

1. Saddle index (curvature test at the centre). The quadratic
   `c0 + c1 a + c2 b + c3 a^2 + c4 a b + c5 b^2` is fitted by least squares over the disk of
   radius `radius` (area-weighted). Its Hessian `H = [[2 c3, c4], [c4, 2 c5]]` has eigenvalues
   `l1, l2`; the saddle index is `sigma = -l1 * l2 / max(l1^2, l2^2)` in [-1, 1]: 1 for a
   balanced saddle (`a*b`, `a^2 - b^2`), 0 for a ridge/valley or a linear g, -1 for a bowl or
   dome; `det(H) < 0` is the paper's "negative curvature" saddle test. A least-squares fit
   rather than finite differences is used because a ReLU inner MLP is piecewise linear (its
   pointwise second derivatives vanish almost everywhere).
2. Quadrupole power fraction (angular decomposition, ell = 2). On each circle the angular
   Fourier power `P_k(ell) = |FFT_theta g(r_k, .)|^2` is computed for ell = 1..max_order (ell = 0,
   the circle mean, is excluded); `q = sum_k r_k P_k(2) / sum_k r_k sum_ell P_k(ell)` in [0, 1].
   `a*b = r^2 sin(2 theta) / 2` has q = 1; any linear g has q = 0.

`score = q * max(sigma, 0)` in [0, 1] and `is_xor = score >= threshold` (default 0.25).
Reference values: `a*b` -> 1.0; `a + b`, `relu(a + b)`, `max(a, b)`, `relu(a) + relu(b)`,
`a^2 + b^2` -> below 0.1.
"""

import dataclasses

import numpy as np

__all__ = ["Surface", "XorScore", "plot_surface", "surface", "xor_score"]


@dataclasses.dataclass(frozen=True)
class Surface:
    """g on a grid: `values[i, j] = g(a[j], b[i])` (rows follow b, like an image); for an
    arity-1 g, `b` is None and `values[j] = g(a[j])`."""

    a: np.ndarray
    b: np.ndarray | None
    values: np.ndarray


@dataclasses.dataclass(frozen=True)
class XorScore:
    """Result of `xor_score` (see the module docstring for the formulas)."""

    score: float
    is_xor: bool
    saddle_index: float
    quadrupole_fraction: float
    hessian: np.ndarray
    hessian_det: float
    angular_power: np.ndarray  # power at ell = 1..max_order, area-weighted over radii, normalised

    def as_dict(self):
        return {
            "score": self.score,
            "is_xor": self.is_xor,
            "saddle_index": self.saddle_index,
            "quadrupole_fraction": self.quadrupole_fraction,
            "hessian": self.hessian.tolist(),
            "hessian_det": self.hessian_det,
            "angular_power": self.angular_power.tolist(),
        }


def _arity(inner):
    arity = getattr(inner, "arity", None)
    if arity is not None:
        return int(arity)
    return 2


def _as_function(inner):
    """Return `(f, arity)` with `f(points (M, arity)) -> values (M,)` in float64."""
    arity = _arity(inner)
    if hasattr(inner, "compute_output_shape") and hasattr(inner, "weights"):
        from keras import ops

        def f(points):
            out = inner(np.asarray(points, dtype="float32"))
            return np.asarray(ops.convert_to_numpy(out), dtype="float64").reshape(len(points))

        return f, arity
    if callable(inner):

        def f(points):
            points = np.asarray(points, dtype="float64")
            args = [points[:, i] for i in range(points.shape[1])]
            return np.broadcast_to(np.asarray(inner(*args), dtype="float64"), (len(points),)).copy()

        return f, arity
    raise ValueError(f"`inner` must be a Keras layer or a callable f(a, b), got {inner!r}.")


def _axes(grid, extent):
    if grid is None:
        grid = 101
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        if grid < 2:
            raise ValueError(f"surface: an int `grid` must be >= 2, got {grid}.")
        axis = np.linspace(-extent, extent, int(grid))
        return axis, axis
    if isinstance(grid, tuple) and len(grid) == 2:
        return np.asarray(grid[0], dtype="float64"), np.asarray(grid[1], dtype="float64")
    axis = np.asarray(grid, dtype="float64")
    if axis.ndim != 1 or axis.size < 2:
        raise ValueError("surface: `grid` must be an int, a 1-D array of >= 2 coordinates or a pair of them.")
    return axis, axis


def surface(inner, grid=101, extent=3.0):
    """Evaluate g on a grid.

    Args:
        inner: the inner net (a layer) or a function `f(a, b)`.
        grid: an int n (n x n points on `[-extent, extent]^2`, default 101), a 1-D array of
            coordinates used for both axes, or a pair `(a_axis, b_axis)`.
        extent: half-width of the default grid. Default 3 (LayerNorm'ed pre-activations
            fall almost entirely inside [-3, 3]).

    Returns:
        A `Surface` with `values[i, j] = g(a[j], b[i])` (a 1-D curve for arity-1 g).
    """
    f, arity = _as_function(inner)
    a_axis, b_axis = _axes(grid, extent)
    if arity == 1:
        return Surface(a_axis, None, f(a_axis[:, None]))
    av, bv = np.meshgrid(a_axis, b_axis)
    points = np.stack([av.reshape(-1), bv.reshape(-1)], axis=-1)
    return Surface(a_axis, b_axis, f(points).reshape(av.shape))


def xor_score(inner, radius=2.0, n_radii=16, n_angles=64, max_order=8, threshold=0.25):
    """Quantify how much g(a, b) is a soft XOR (see the module docstring for the formula).

    Args:
        inner: an arity-2 inner net (layer) or a function `f(a, b)`.
        radius: radius of the disk around the centre that is analysed. Default 2.
        n_radii, n_angles: polar sampling. Defaults 16 and 64.
        max_order: highest angular order ell in the power sum. Default 8 (< n_angles / 2).
        threshold: `is_xor` is `score >= threshold`. Default 0.25.

    Returns:
        An `XorScore`.
    """
    if _arity(inner) != 2:
        raise ValueError(f"xor_score: `inner` must have arity 2, got arity {_arity(inner)}.")
    if not radius > 0 or n_radii < 2 or n_angles < 8:
        raise ValueError(
            f"xor_score: need `radius` > 0, `n_radii` >= 2 and `n_angles` >= 8, got {radius}, {n_radii}, "
            f"{n_angles}."
        )
    if not 2 <= max_order < n_angles // 2:
        raise ValueError(f"xor_score: `max_order` must be in [2, n_angles/2), got {max_order}.")
    f, _ = _as_function(inner)
    r = radius * (np.arange(n_radii) + 0.5) / n_radii
    theta = 2 * np.pi * np.arange(n_angles) / n_angles
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    a, b = rr * np.cos(tt), rr * np.sin(tt)
    values = f(np.stack([a.reshape(-1), b.reshape(-1)], axis=-1)).reshape(rr.shape)

    # 1. quadratic least-squares fit over the disk (area weight r), Hessian and saddle index
    w = np.sqrt(rr.reshape(-1))
    design = np.stack([np.ones_like(a), a, b, a * a, a * b, b * b], axis=-1).reshape(-1, 6)
    coef, *_ = np.linalg.lstsq(design * w[:, None], values.reshape(-1) * w, rcond=None)
    hessian = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
    eig = np.linalg.eigvalsh(hessian)
    scale = np.std(values) + 1e-12
    biggest = np.max(np.abs(eig))
    if biggest * radius**2 < 1e-6 * scale:
        saddle = 0.0
    else:
        saddle = float(-eig[0] * eig[1] / biggest**2)

    # 2. angular power at ell = 1..max_order, area-weighted over radii
    spectrum = np.abs(np.fft.rfft(values, axis=1)) ** 2
    power = (r[:, None] * spectrum[:, 1 : max_order + 1]).sum(axis=0)
    total = power.sum()
    if total <= 1e-12 * (np.sum(r[:, None] * spectrum) + 1e-30):
        quad, power_norm = 0.0, np.zeros(max_order)
    else:
        quad, power_norm = float(power[1] / total), power / total

    score = quad * max(saddle, 0.0)
    return XorScore(
        score=float(score),
        is_xor=bool(score >= threshold),
        saddle_index=saddle,
        quadrupole_fraction=quad,
        hessian=hessian,
        hessian_det=float(np.linalg.det(hessian)),
        angular_power=power_norm,
    )


def plot_surface(inner, grid=101, extent=3.0, path=None, title=None, score=True, levels=15, cmap="RdBu_r"):
    """Plot g as a heat map with contour lines (a line plot for an arity-1 g).

    Args:
        inner: the inner net (layer) or a function `f(a, b)`.
        grid, extent: as in `surface`.
        path: if given, save the figure there as PNG (directories are created).
        title: figure title; by default the soft-XOR score is shown (arity 2).
        score: include the `xor_score` in the default title.
        levels: number of contour levels.
        cmap: matplotlib colour map of the heat map.

    Returns:
        A `matplotlib.figure.Figure` (created without pyplot, so it works headless).
    """
    from matplotlib.figure import Figure

    surf = surface(inner, grid=grid, extent=extent)
    fig = Figure(figsize=(5.2, 4.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if surf.b is None:
        ax.plot(surf.a, surf.values, color="C0")
        ax.set_xlabel("a")
        ax.set_ylabel("g(a)")
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        default = "inner nonlinearity g(a)"
    else:
        lim = float(np.max(np.abs(surf.values))) or 1.0
        image = ax.imshow(
            surf.values,
            origin="lower",
            extent=(surf.a[0], surf.a[-1], surf.b[0], surf.b[-1]),
            cmap=cmap,
            vmin=-lim,
            vmax=lim,
            aspect="auto",
        )
        ax.contour(surf.a, surf.b, surf.values, levels=levels, colors="k", linewidths=0.5)
        fig.colorbar(image, ax=ax, label="g(a, b)")
        ax.set_xlabel("a")
        ax.set_ylabel("b")
        default = "inner nonlinearity g(a, b)"
        if score:
            s = xor_score(inner)
            default += (
                f"\nxor score {s.score:.2f} (saddle {s.saddle_index:+.2f}, l=2 {s.quadrupole_fraction:.2f})"
            )
    ax.set_title(title if title is not None else default, fontsize=9)
    fig.tight_layout()
    if path is not None:
        import pathlib

        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return fig
