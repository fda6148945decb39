"""A small vision transformer on Fashion-MNIST with its feed-forward block swapped (issue 30 item 3).

The model (`build_vit`): 28x28 images cut into `--patch`x`--patch` patches (7x7: 16 tokens), a
Dense patch embedding to `--width` plus a learned position embedding, `--blocks` pre-LayerNorm
transformer blocks (multi-head self-attention with `--heads` heads, then the feed-forward block,
each with a residual connection), a final LayerNorm, mean over tokens and a Dense(10) head. Only the
feed-forward block differs between the arms (`ARMS`):

* `relu`, `gelu`: `Dense(h) -> act -> Dense(width)`, h = `--ffn-ratio` x width (the reference size);
* `geglu`, `swiglu`: `W2 (act(W1 x) * V x)` (Shazeer 2020), gated width sized to the reference;
* `2-arg`: `TwoArgFeedForward`, pre-activations paired and passed through ONE inner net g shared
  by every block of the network (as the two-argument MLP of `recipes/two_arg_xor.py`);
* `2-arg-grouped`: `TwoArgFeedForward(groups=--groups)`: each group of units of a block has its own
  g (KAT-style, Yang & Wang 2025).

Every arm's hidden width is sized (`keras_bioact.ffn_param_count` /
`size_feed_forward`) so that the whole model has the reference model's parameter count within
`--tolerance` (2 %); the counts are printed, stored in every run file and tested.

Metrics per run (one run file per (arm, seed), `recipes.common.run_results`, finished runs skipped):
`test_accuracy` / `test_error` on the test set after the last epoch (no early stopping; the test set
plays no part in training), `mean_train_loss` = the area under the per-step training-loss curve
divided by the number of steps (Keras's per-epoch loss is the mean of that epoch's batch losses, and
every epoch has the same number of equal batches: `--train-limit` is a multiple of `--batch-size`),
`final_train_loss`, and for the 2-arg arms `xor_score` (`keras_bioact.analysis.xor_score` of the
learned g; the mean over the groups of the grouped arm) with the per-g scores in the record. PNG
surfaces of the learned g go to `--figures` (seed 0 by default; `--surface-seeds`).

Run (the reduced scale of recipes/README.md, JAX on the 2-core CPU):
    KERAS_BACKEND=jax python recipes/two_arg_vit.py --results recipes/results
Smoke (seconds): `--dataset digits --patch 4 --blocks 1 --width 16 --epochs 1 --seeds 0`.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes.common.run_results import RunStore  # noqa: E402

ARMS = ("relu", "gelu", "geglu", "swiglu", "2-arg", "2-arg-grouped")
RECIPE = "two_arg_vit"
FIGURES = pathlib.Path(__file__).resolve().parent / "figures"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("digits", "fashion_mnist"), default="fashion_mnist")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--patch", type=int, default=7, help="patch side (7: 16 tokens of 28x28 images)")
    p.add_argument("--width", type=int, default=64, help="model width")
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn-ratio", type=int, default=4, help="reference hidden width = ratio x width (ReLU)")
    p.add_argument("--groups", type=int, default=4, help="groups of the 2-arg-grouped arm")
    p.add_argument("--inner-hidden", type=int, nargs="+", default=[8, 8], help="hidden widths of each g")
    p.add_argument("--tolerance", type=float, default=0.02, help="largest relative parameter mismatch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--train-limit", type=int, default=2000, help="first N training images (0: all)")
    p.add_argument("--test-limit", type=int, default=2000, help="first N test images (0: all)")
    p.add_argument(
        "--results", type=pathlib.Path, default=None, help="write/skip one run file per (arm, seed)"
    )
    p.add_argument("--figures", type=pathlib.Path, default=None, help="PNG surfaces of the learned g")
    p.add_argument("--surface-seeds", type=int, nargs="*", default=[0], help="seeds whose g is plotted")
    args = p.parse_args(argv)
    if args.train_limit and args.train_limit % args.batch_size:
        p.error("--train-limit must be a multiple of --batch-size (equal batches: see mean_train_loss)")
    if args.width % args.heads:
        p.error("--width must be a multiple of --heads")
    if not 0 < args.tolerance < 1:
        p.error("--tolerance must be in (0, 1)")
    return args


def load_data(args):
    from keras_bioact import datasets

    if args.dataset == "digits":
        (x_train, y_train), (x_test, y_test) = datasets.load_digits(test_fraction=0.25, seed=0)
        x_train, x_test = x_train.reshape(-1, 8, 8), x_test.reshape(-1, 8, 8)
    else:
        (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist()
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    side = x_train.shape[1]
    if side % args.patch:
        raise ValueError(f"--patch {args.patch} does not divide the image side {side}.")
    return (x_train.astype("float32"), y_train), (x_test.astype("float32"), y_test)


# ------------------------------------------------------------------------------------------------
# Model


def _patches(images, patch):
    """`(N, S, S)` images -> `(N, (S/p)^2, p*p)` non-overlapping patches, row-major."""
    from keras import ops

    side = images.shape[1]
    n = side // patch
    x = ops.reshape(images, (-1, n, patch, n, patch))
    x = ops.transpose(x, (0, 1, 3, 2, 4))
    return ops.reshape(x, (-1, n * n, patch * patch))


def _position_embedding():
    import keras

    class PositionEmbedding(keras.layers.Layer):
        """Adds a learned `(tokens, width)` table to its input."""

        def build(self, input_shape):
            self.table = self.add_weight(
                shape=tuple(input_shape[1:]), initializer=keras.initializers.RandomNormal(stddev=0.02)
            )

        def call(self, x):
            return x + self.table

    return PositionEmbedding(name="position")


def ffn_kwargs(arm, args):
    """`(kind, groups)` of an arm: the `keras_bioact.feed_forward` kind and its number of g's."""
    kind = {"2-arg": "two_arg", "2-arg-grouped": "two_arg"}.get(arm, arm)
    return kind, (args.groups if arm == "2-arg-grouped" else 1)


def _inner(args, groups, name):
    from keras_bioact.layers import InnerNonlinearity

    return InnerNonlinearity(arity=2, hidden_units=tuple(args.inner_hidden), groups=groups, name=name)


def build_vit(arm, hidden, args, input_side, n_classes=10):
    """The ViT of the module docstring with the feed-forward block of `arm` at `hidden` units."""
    import keras

    from keras_bioact.feed_forward import feed_forward

    kind, groups = ffn_kwargs(arm, args)
    shared = _inner(args, 1, "inner") if arm == "2-arg" else None  # one g for every block
    inputs = keras.Input((input_side, input_side))
    x = keras.layers.Dense(args.width, name="patch_embedding")(_patches(inputs, args.patch))
    x = _position_embedding()(x)
    for b in range(args.blocks):
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"ln_attn_{b}")(x)
        h = keras.layers.MultiHeadAttention(args.heads, args.width // args.heads, name=f"attention_{b}")(h, h)
        x = keras.layers.Add()([x, h])
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"ln_ffn_{b}")(x)
        ffn = {"name": f"ffn_{b}"}
        if kind == "two_arg":  # the grouped arm: G g's of its own in every block
            ffn.update(groups=groups, inner=shared or _inner(args, groups, f"inner_{b}"))
        h = feed_forward(kind, hidden, **ffn)(h)
        x = keras.layers.Add()([x, h])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln_out")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"vit_{arm}")


def non_ffn_params(args, input_side, n_classes=10):
    """Parameters of everything but the feed-forward blocks (embedding, attention, norms, head)."""
    w, tokens, pp = args.width, (input_side // args.patch) ** 2, args.patch**2
    attention = 4 * (w * w + w)  # query, key, value (heads x key_dim = width) and output projections
    block = attention + 2 * 2 * w  # two LayerNorms (gamma, beta)
    return (pp * w + w) + tokens * w + args.blocks * block + 2 * w + (w * n_classes + n_classes)


def arm_sizes(args, input_side, n_classes=10):
    """`{arm: (hidden, params)}` of every arm sized to the reference model (ReLU, ratio x width), and
    the reference count. A g shared by all blocks is counted once, its weights taken from the
    blocks' budget in equal parts."""
    from keras_bioact.feed_forward import feed_forward_hidden, feed_forward_params
    from keras_bioact.nin import inner_param_count

    rest = non_ffn_params(args, input_side, n_classes)
    block_budget = feed_forward_params("relu", args.width, args.ffn_ratio * args.width)
    target = rest + args.blocks * block_budget
    sizes = {}
    for arm in ARMS:
        kind, groups = ffn_kwargs(arm, args)
        shared_g = inner_param_count(2, tuple(args.inner_hidden)) if arm == "2-arg" else 0
        block = {"groups": groups, "inner_hidden": tuple(args.inner_hidden), "count_inner": not shared_g}
        budget = round(block_budget - shared_g / args.blocks)
        hidden = feed_forward_hidden(kind, args.width, budget, tolerance=None, **block)
        total = rest + args.blocks * feed_forward_params(kind, args.width, hidden, **block) + shared_g
        if abs(total - target) / target > args.tolerance:
            raise ValueError(
                f"two_arg_vit: arm {arm!r} at hidden {hidden} has {total} parameters, more than "
                f"{args.tolerance:.0%} from the reference {target}; change --width/--ffn-ratio/--groups."
            )
        sizes[arm] = (hidden, total)
    return sizes, target


# ------------------------------------------------------------------------------------------------
# Training and analysis


def learned_gs(model):
    """`[(label, f)]`: every distinct learned g of a model as a function `f(a, b)` (one per group of
    a grouped inner net), in block order; a g shared by all blocks appears once."""
    from keras import ops

    from keras_bioact import nin

    out = []
    for inner in nin.inner_nets(model):
        groups = getattr(inner, "groups", 1)
        for k in range(groups):

            def f(a, b, inner=inner, k=k, groups=groups):
                pts = np.stack([np.ravel(a), np.ravel(b)], -1).astype("float32")
                if groups > 1:
                    pts = np.repeat(pts[:, None, :], groups, axis=1)
                y = np.asarray(ops.convert_to_numpy(inner(pts)), dtype="float64")
                y = y[:, k, 0] if groups > 1 else y[:, 0]
                return y.reshape(np.shape(a))

            out.append((inner.name if groups == 1 else f"{inner.name}[{k}]", f))
    return out


def train_eval(model, data, args):
    import keras

    (x_train, y_train), (x_test, y_test) = data
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    hist = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    curves = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    acc = float(model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])
    return acc, curves


def plot_inner(gs, path, title):
    """One panel per `(label, f, xor_score)` of `gs` (a shared g: one panel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_bioact import analysis

    n = len(gs)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (label, g, score) in zip(axes.flat, gs, strict=False):
        s = analysis.surface(g, grid=61)
        ax.contourf(s.a, s.b, s.values, levels=15, cmap="RdBu_r")
        ax.set_title(f"{label}: xor {score:.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)


PROTOCOL_KEYS = (
    "dataset", "patch", "width", "blocks", "heads", "ffn_ratio", "groups", "inner_hidden", "tolerance",
    "epochs", "batch_size", "learning_rate", "train_limit", "test_limit",
)  # fmt: skip


def setting_name(args):
    tokens = (28 if args.dataset == "fashion_mnist" else 8) // args.patch
    return f"{args.dataset}-vit{args.blocks}x{args.width}-t{tokens * tokens}"


def run_one(arm, seed, hidden, data, args, setting):
    import keras

    from keras_bioact import analysis

    keras.utils.set_random_seed(seed)
    model = build_vit(arm, hidden, args, data[0][0].shape[1], int(np.max(data[0][1])) + 1)
    began = time.perf_counter()
    acc, curves = train_eval(model, data, args)
    seconds = time.perf_counter() - began
    loss = curves["loss"]
    metrics = {
        "test_accuracy": acc,
        "test_error": 1.0 - acc,
        "final_train_loss": loss[-1],
        "mean_train_loss": float(np.mean(loss)),
        "params": int(model.count_params()),
    }
    record = {"hidden": hidden, "params": int(model.count_params())}
    gs = learned_gs(model)
    if gs:
        scores = [analysis.xor_score(f).as_dict() for _, f in gs]
        record["xor"] = [{"g": label, **s} for (label, _), s in zip(gs, scores, strict=True)]
        metrics["xor_score"] = float(np.mean([s["score"] for s in scores]))
        metrics["xor_fraction"] = float(np.mean([s["is_xor"] for s in scores]))
        if args.figures is not None and seed in args.surface_seeds:
            path = args.figures / f"{RECIPE}-{setting}-{arm}-g-seed{seed}.png"
            panels = [(label, f, s["score"]) for (label, f), s in zip(gs, scores, strict=True)]
            plot_inner(panels, path, f"learned g, {arm}, seed {seed} ({setting})")
            record["surface_png"] = path.name
    return metrics, curves, record, seconds


def main(argv=None):
    args = parse_args(argv)
    if args.figures is not None:  # load the plotting stack before training: a missing one fails now,
        import matplotlib  # not after an hour of training (and a removed install cannot break it later)

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    data = load_data(args)
    side = data[0][0].shape[1]
    sizes, target = arm_sizes(args, side)
    setting = setting_name(args)
    print(f"{setting}: reference (ReLU, hidden {args.ffn_ratio * args.width}) {target:,} parameters")
    for arm, (hidden, total) in sizes.items():
        print(f"  {arm:14s} hidden {hidden:4d}  params {total:,} ({(total - target) / target:+.2%})")
    store = None
    if args.results is not None:
        config = {k: getattr(args, k) for k in PROTOCOL_KEYS}
        store = RunStore(args.results, RECIPE, config)
    arch = (
        f"ViT, {args.patch}x{args.patch} patches ({(side // args.patch) ** 2} tokens), {args.blocks} pre-LN "
        f"blocks of width {args.width}, {args.heads} heads, feed-forward swapped, parameter-matched to the "
        f"ReLU model (hidden {args.ffn_ratio * args.width}; {target:,} parameters) within "
        f"{args.tolerance:.0%}; g: {tuple(args.inner_hidden)} hidden, {args.groups} groups in 2-arg-grouped; "
        f"Adam {args.learning_rate}, {args.train_limit or 'all'} training images, "
        f"{args.test_limit or 'all'} test images"
    )
    out = {}
    for seed in args.seeds:  # seed-major: a cut grid has every arm's early seeds
        for arm in args.arms:
            if store is not None and store.existing(setting, arm, seed) is not None:
                continue
            hidden = sizes[arm][0]
            metrics, curves, record, seconds = run_one(arm, seed, hidden, data, args, setting)
            assert metrics["params"] == sizes[arm][1], (arm, metrics["params"], sizes[arm])
            out[(arm, seed)] = metrics
            print(
                f"{arm:14s} seed {seed}: test acc {metrics['test_accuracy']:.4f}, mean train loss "
                f"{metrics['mean_train_loss']:.4f}, {seconds:.0f} s"
                + (f", xor {metrics['xor_score']:.2f}" if "xor_score" in metrics else ""),
                flush=True,
            )
            if store is not None:
                extra = {
                    "dataset": args.dataset,
                    "architecture": arch,
                    "params": metrics["params"],
                    "record": record,
                }
                store.save(
                    setting, arm, seed, metrics=metrics, curves=curves, wall_time_s=seconds, extra=extra
                )
    return {"sizes": sizes, "target": target, "setting": setting, "runs": out}


if __name__ == "__main__":
    main()
