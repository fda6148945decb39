import os
import time
import warnings

import keras
import numpy as np

from keras_bioact.callbacks import figures, inspection

DEFAULT_REFERENCES = ("relu", "softplus", "sigmoid", "elu")


class ActivationInspector(keras.callbacks.Callback):
    """Write what every keras-bioact activation learned to TensorBoard.

    Finds every keras-bioact layer and RNN cell of the model (nested models and cells
    included, through `keras_bioact.params.activation_parameters`, i.e. every layer that
    declares `bioact_parameters`) and writes, per layer, into `log_dir/train` (the directory
    `keras.callbacks.TensorBoard(log_dir)` writes its training summaries to, so both show as
    one run):

    * every `every_n_epochs` epochs: a histogram of each activation parameter
      (`bioact/<layer>/n`, `.../s`, `.../r`, ...) and its summary scalars
      (`bioact/<layer>/n/mean`, `/std`, `/min`, `/max`);
    * every `images_every_n_epochs` epochs, images:
      * `bioact/<layer>/curves`: the population of per-neuron activation curves over
        `input_range` (thin lines up to `max_lines` neurons, median and 5-95 % / 25-75 %
        quantile bands above), with the reference functions (ReLU, softplus, sigmoid, ELU);
      * two-argument units (the shared inner net g): `bioact/<layer>/surface`, the heatmap and
        contours of g(a, b), and the scalar `bioact/<layer>/xor_score`;
      * adaptive RNN cells (ANRU), on a fixed probe batch: `bioact/<layer>/trajectories`
        (n_t and s_t over time for the first probe sequence) and histograms
        `bioact/<layer>/n_t`, `bioact/<layer>/s_t` of all their values.

    The first and the last epoch of every `fit` are always written (histograms, scalars and
    images), whatever the cadence and the cost budget, so the starting and the learned shapes
    are both on record; the budget only thins the epochs in between.

    Step numbers are epochs (0-based), like the `epoch_*` scalars of
    `keras.callbacks.TensorBoard`. Summaries are written with `keras_bioact.callbacks.SummaryWriter`,
    which needs only the `tensorboard` package (not TensorFlow), so the callback works with the
    JAX, PyTorch and TensorFlow backends, with or without `jit_compile`. Images are drawn with
    matplotlib's Agg backend. For live viewing of a run that `keras.callbacks.TensorBoard` also
    writes to, start TensorBoard with `--reload_multifile=true` (two event files in one run
    directory); after training a plain `tensorboard --logdir` shows both.

    A model without keras-bioact layers gets a warning and nothing is written.

    Args:
        log_dir: the TensorBoard log directory (the same as `keras.callbacks.TensorBoard`'s).
        every_n_epochs: write histograms and scalars every this many epochs (and always after
            the first and the last epoch). Default 1.
        images_every_n_epochs: render images every this many epochs (and always after the first
            and the last epoch); `None` renders them only after the first and the last epoch.
            Default 10.
        input_range: `(low, high)` of the x grid of the activation curves. Default `(-4, 4)`.
        num_points: grid points of the curves. Default 161.
        max_lines: draw neurons as individual lines up to this many, quantile bands above.
            Default 64.
        references: reference functions drawn with the curves, a subset of
            `("relu", "softplus", "sigmoid", "elu", "tanh")`. Default the first four.
        probe_data: model input (array, list or dict) whose first `probe_size` samples are the
            fixed probe batch for the n_t/s_t trajectories of adaptive RNN cells. Default
            `None`: a fixed standard-normal probe of the RNN layer's input shape.
        probe_size: number of probe sequences. Default 8.
        surface_range: half-width of the square grid of two-argument surfaces. Default 3.
        run_name: sub-directory of `log_dir` written to. Default `"train"`.
        histograms: write parameter histograms. Default True.
        images: write images. Default True.
        max_overhead: cost budget, a fraction of training time. A write that is due is postponed
            (to the first later epoch that affords it) while the time this callback has spent
            plus the last measured cost of that write exceeds `max_overhead` times the training
            time so far. Default 0.05 (5 %); `None` writes whenever due. The first epoch
            (compilation) is outside the budget: its training time is not counted, and its
            writes are always made and not counted either. The last epoch is always written
            (in `on_train_end`), whatever the budget.
        figsize: size of the curve images in inches. Default `(4, 3)`.
        dpi: resolution of the images. Default 80.
    """

    def __init__(
        self,
        log_dir,
        every_n_epochs=1,
        images_every_n_epochs=10,
        input_range=(-4.0, 4.0),
        num_points=161,
        max_lines=64,
        references=DEFAULT_REFERENCES,
        probe_data=None,
        probe_size=8,
        surface_range=3.0,
        run_name="train",
        histograms=True,
        images=True,
        max_overhead=0.05,
        figsize=(4.0, 3.0),
        dpi=80,
    ):
        super().__init__()
        name = type(self).__name__
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = _positive_int(every_n_epochs, "every_n_epochs", name)
        self.images_every_n_epochs = (
            None
            if images_every_n_epochs is None
            else _positive_int(images_every_n_epochs, "images_every_n_epochs", name)
        )
        try:
            low, high = (float(v) for v in input_range)
        except (TypeError, ValueError):
            low, high = 0.0, 0.0
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(
                f"{name}: `input_range` must be (low, high) with low < high, got {input_range!r}."
            )
        self.input_range = (low, high)
        self.num_points = _positive_int(num_points, "num_points", name, minimum=2)
        self.max_lines = _positive_int(max_lines, "max_lines", name)
        references = tuple(references or ())
        unknown = [r for r in references if r not in figures.REFERENCES]
        if unknown:
            raise ValueError(
                f"{name}: `references` must be names from {tuple(figures.REFERENCES)}, "
                f"got unknown {unknown}."
            )
        self.references = references
        self.probe_data = probe_data
        self.probe_size = _positive_int(probe_size, "probe_size", name)
        if not (isinstance(surface_range, (int, float)) and surface_range > 0):
            raise ValueError(f"{name}: `surface_range` must be a number > 0, got {surface_range!r}.")
        self.surface_range = float(surface_range)
        self.run_name = str(run_name)
        self.histograms = bool(histograms)
        if max_overhead is not None and not (
            isinstance(max_overhead, (int, float)) and 0 < max_overhead <= 1
        ):
            raise ValueError(
                f"{name}: `max_overhead` must be None or a number in (0, 1], got {max_overhead!r}."
            )
        self.max_overhead = None if max_overhead is None else float(max_overhead)
        self.images = bool(images)
        self.figsize = tuple(figsize)
        self.dpi = int(dpi)
        self._grid = np.linspace(low, high, self.num_points)
        self._layers = None
        self._writer = None
        self._warned = False
        self._probes = {}
        self._last_epoch = None
        self._last_scalars = None
        self._last_images = None
        self._canvases = {}
        self._spent = self._train_time = 0.0
        self._epochs_seen = 0
        self._cost = {"scalars": None, "images": None}
        self._epoch_t0 = None
        self._pending_scalars = self._pending_images = False

    # -- public helpers ----------------------------------------------------------------------
    @property
    def inspected_layers(self):
        """The `InspectedLayer`s found in the model (after training started)."""
        return list(self._layers or [])

    @property
    def writer_dir(self):
        return os.path.join(self.log_dir, self.run_name)

    def write(self, step, images=True):
        """Write every summary for the current model state at `step` (also usable outside `fit`)."""
        if not self._discover():
            return
        self._write_parameters(step)
        if images and self.images:
            self._write_images(step)
        self._writer.flush()

    def close(self):
        """Close the event file (done by `on_train_end`; needed after `write` outside `fit`)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- Keras hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._layers = None
        self._warned = False
        self._probes = {}
        self._last_epoch = self._last_scalars = self._last_images = None
        self._pending_scalars = self._pending_images = False
        self._spent = 0.0
        self._train_time = 0.0
        self._epochs_seen = 0
        self._epoch_t0 = None
        if self._discover(quiet_if_unbuilt=True) and self.images:
            # One-time setup outside the per-epoch budget: build each layer's curve figure (its
            # axes, labels and reference functions are drawn once and reused by every render).
            for item in self._layers:
                if item.has_curves():
                    self._canvas(item).render(item.curves(self._grid))
        self._cost = {"scalars": None, "images": None}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        t0 = time.perf_counter()
        # The first epoch (compilation) is outside the budget: its time is not counted, and its
        # summaries (the starting shapes) are always written.
        first = self._epochs_seen == 0
        if self._epoch_t0 is not None and not first:
            self._train_time += t0 - self._epoch_t0  # the training time the budget is measured against
        self._epochs_seen += 1
        self._last_epoch = epoch
        if first or (epoch + 1) % self.every_n_epochs == 0:
            self._pending_scalars = True
        if self.images and (
            first
            or (self.images_every_n_epochs is not None and (epoch + 1) % self.images_every_n_epochs == 0)
        ):
            self._pending_images = True
        if not (self._pending_scalars or self._pending_images) or not self._discover():
            return
        wrote = False
        if self._pending_scalars and (first or self._affordable("scalars")):
            self._timed("scalars", self._write_parameters, epoch, budgeted=not first)
            self._pending_scalars, wrote = False, True
        if self._pending_images and (first or self._affordable("images")):
            self._timed("images", self._write_images, epoch, budgeted=not first)
            self._pending_images, wrote = False, True
        if wrote:
            self._writer.flush()

    def on_train_end(self, logs=None):
        epoch = self._last_epoch
        if epoch is not None and self._discover():
            if self._last_scalars != epoch:
                self._write_parameters(epoch)
            if self.images and self._last_images != epoch:
                self._write_images(epoch)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- internals ---------------------------------------------------------------------------
    def _affordable(self, what):
        if self.max_overhead is None:
            return True
        cost = self._cost[what]
        if cost is None:
            # Prior estimate until measured (seconds), conservative so the budget holds from the start.
            cost = (0.002 if what == "scalars" else 0.05) * len(self._layers)
        return self._spent + cost <= self.max_overhead * self._train_time

    def _timed(self, what, fn, epoch, budgeted=True):
        t = time.perf_counter()
        fn(epoch)
        cost = time.perf_counter() - t
        self._cost[what] = cost
        if budgeted:
            self._spent += cost

    def _discover(self, quiet_if_unbuilt=False):
        if self._layers is not None:
            return bool(self._layers)
        if self.model is None:
            return False
        try:
            layers = inspection.find_layers(self.model)
        except ValueError:
            if quiet_if_unbuilt:
                return False
            raise
        self._layers = layers
        if not layers:
            if not self._warned:
                warnings.warn(
                    f"ActivationInspector: model {self.model.name!r} has no keras-bioact layers "
                    "(GammaActivation, BRU, two-argument or gamma RNN layers); nothing is written.",
                    stacklevel=2,
                )
                self._warned = True
            return False
        if self._writer is None:
            from keras_bioact.callbacks.summary_writer import SummaryWriter

            self._writer = SummaryWriter(self.writer_dir, filename_suffix=".bioact")
        return True

    def _write_parameters(self, step):
        self._last_scalars = step
        scalars, histograms = {}, {}
        for item in self._layers:
            values = item.parameter_values()
            for key, v in item.parameter_stats(values).items():
                scalars[f"bioact/{item.tag}/{key}"] = v
            if self.histograms:
                for pname, v in values.items():
                    histograms[f"bioact/{item.tag}/{pname}"] = v
        self._writer.write(step, scalars, histograms)

    def _write_images(self, step):
        self._last_images = step
        w = self._writer
        for item in self._layers:
            if item.has_curves():
                png = self._canvas(item).render(item.curves(self._grid))
                w.image(f"bioact/{item.tag}/curves", png, step)
            if item.kind == "surface":
                a, b, g = item.surface(self.surface_range)
                score = xor_score_of(item.layer, a, b, g)
                title = f"{item.tag}: g(a, b)"
                if score is not None:
                    title += f", xor score {score:.2f}"
                    w.scalar(f"bioact/{item.tag}/xor_score", score, step)
                w.image(
                    f"bioact/{item.tag}/surface", figures.surface_png(a, b, g, title, dpi=self.dpi), step
                )
            if item.has_trajectories:
                probe = self._probe(item)
                traj = item.trajectories(probe) if probe is not None else None
                if traj is not None:
                    n_t, s_t = traj
                    if self.histograms:
                        w.write(
                            step, histograms={f"bioact/{item.tag}/n_t": n_t, f"bioact/{item.tag}/s_t": s_t}
                        )
                    png = figures.trajectories_png(
                        n_t[0], s_t[0], f"{item.tag}: n_t, s_t (probe 0)", dpi=self.dpi
                    )
                    w.image(f"bioact/{item.tag}/trajectories", png, step)

    def _canvas(self, item):
        canvas = self._canvases.get(item.tag)
        if canvas is None:
            canvas = self._canvases[item.tag] = figures.CurveCanvas(
                self._grid,
                item.curve_title(),
                self.max_lines,
                self.references if item.kind != "inner_curve" else (),
                self.figsize,
                self.dpi,
            )
        return canvas

    def _probe(self, item):
        key = id(item.layer)
        if key not in self._probes:
            self._probes[key] = inspection.probe_for(self.model, item, self.probe_data, self.probe_size)
            if self._probes[key] is None:
                warnings.warn(
                    f"ActivationInspector: no probe batch for {item.tag!r} (pass `probe_data`); "
                    "its n_t/s_t trajectories are skipped.",
                    stacklevel=3,
                )
        return self._probes[key]


def xor_score_of(layer, a, b, g):
    """The XOR score (`keras_bioact.analysis.xor_score`) of a two-argument unit's inner net."""
    from keras_bioact import analysis

    result = analysis.xor_score(layer)
    return float(getattr(result, "score", result))


def _positive_int(value, arg, layer, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer}: `{arg}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)
