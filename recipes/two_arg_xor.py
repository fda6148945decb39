"""Two-argument (dendritic) MLP vs 1-arg and parameter-matched ReLU MLPs; is the learned g a soft XOR?

SPEC section 2 (Yoon, Orhan, Kim & Pitkow, arXiv:2110.06871) at laptop scale. For every seed:

* 2-arg and 1-arg MLPs (`keras_bioact.nin.two_arg_mlp`, pre-activation widths `--widths`, one
  shared `InnerNonlinearity`, LayerNorm before g, dropout):
  session I  pre-train g on a random smooth surface (`nin.pretrain_inner`),
  session II train g and the outer net jointly (`--epochs`), test accuracy "joint",
  session III freeze g, re-initialise the outer net, train it again (`--epochs`), test accuracy
  "frozen g" (skip with `--no-session3`).
* ReLU MLP with widths from `nin.param_matched_relu_widths` (parameter count within 1 %),
  trained `--epochs`.
* GEGLU and SwiGLU MLPs (Shazeer 2020; issue 30): every hidden layer is the 2-arg layer with g
  fixed to a GLU unit: `Dense(2u)`, LayerNorm without affine parameters (as `TwoArgDense`), then
  `act(a) * b` of the two halves, dropout; one common u from `glu_mlp_width`, so the parameter
  count matches the 2-arg MLP within 2 %. Trained like the ReLU MLP. (Without the LayerNorm the
  three stacked products were unstable: a GEGLU run spiked to a training loss of 5.9 and stopped
  early at 79.6 %.)
* `keras_bioact.analysis.xor_score` of the 2-arg g after pre-training and after session II.

Run (CPU, a few minutes):
    KERAS_BACKEND=jax python recipes/two_arg_xor.py --out runs/two_arg_xor
    KERAS_BACKEND=jax python recipes/two_arg_xor.py --dataset fashion_mnist --train-limit 10000

`--out DIR` writes `results.json` (per-seed numbers and the summary) and PNG surface plots of g.
`--patience P` stops every training session early (Keras `EarlyStopping` on the loss of the last
`--validation-split` of the training set, best weights restored; the test set plays no part in it).
`--results DIR` also writes one run file per (model, seed) (`recipes.common.run_results`, read by
`recipes/report.py`) and skips the runs already there. Summaries over seeds are
`keras_bioact.stats.describe` (mean ± sample std, 95 % t-interval).
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from keras_bioact.stats import describe

if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes.common.run_results import RunStore, write_json_atomic  # noqa: E402
from recipes.common.tables import fmt  # noqa: E402

MODELS = ("2-arg", "1-arg", "relu", "geglu", "swiglu")
GLU = {"geglu": "gelu", "swiglu": "silu"}  # gated MLPs: hidden layer = act(a) * b, a, b = halves of Dense(2u)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("digits", "fashion_mnist"), default="digits")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="model seeds (>= 3 for mean ± std)"
    )
    p.add_argument("--epochs", type=int, default=40, help="epochs of session II, session III and ReLU")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="session I epochs (reference: up to 500)")
    p.add_argument(
        "--pretrain-grid", type=int, default=101, help="session I grid points per axis (reference 101)"
    )
    p.add_argument("--widths", type=int, nargs="+", default=[120, 120, 120], help="pre-activation widths")
    p.add_argument("--inner-hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--no-session3", action="store_true", help="skip session III (frozen g, fresh outer net)")
    p.add_argument("--jit", action="store_true", help="compile with jit_compile=True (XLA)")
    p.add_argument("--patience", type=int, default=0, help="early-stopping patience in epochs (0: off)")
    p.add_argument(
        "--validation-split", type=float, default=0.1, help="with --patience: last fraction of training data"
    )
    p.add_argument(
        "--results",
        type=pathlib.Path,
        default=None,
        help="also write each finished (model, seed) as RESULTS/two_arg_xor/<dataset>-mlp<widths>/<model>/"
        "seed<k>.json and skip the runs already there (continue an interrupted grid)",
    )
    p.add_argument("--out", type=pathlib.Path, default=None, help="directory for results.json and PNG plots")
    p.add_argument(
        "--merge",
        type=pathlib.Path,
        nargs="+",
        default=None,
        help="only combine the results.json of earlier runs (e.g. one per seed) into one table",
    )
    args = p.parse_args(argv)
    if args.patience < 0:
        p.error("--patience must be >= 0")
    if not 0.0 < args.validation_split < 1.0:
        p.error("--validation-split must be in (0, 1)")
    return args


def load_data(args):
    from keras_bioact import datasets

    if args.dataset == "digits":
        (x_train, y_train), (x_test, y_test) = datasets.load_digits(test_fraction=0.25, seed=0)
    else:
        (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist()
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    return (x_train, y_train), (x_test, y_test)


def _compile(model, args):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True if args.jit else "auto",
    )


def _fit_eval(model, data, args, curves=None):
    """Train (early-stopped with `--patience`); returns the test accuracy, per-epoch numbers in `curves`."""
    import keras

    (x_train, y_train), (x_test, y_test) = data
    _compile(model, args)
    fit = {"epochs": args.epochs, "batch_size": args.batch_size, "verbose": 0}
    if args.patience:
        n_val = max(1, int(round(len(x_train) * args.validation_split)))
        fit["validation_data"] = (x_train[-n_val:], y_train[-n_val:])
        x_train, y_train = x_train[:-n_val], y_train[:-n_val]
        stop = keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True)
        fit["callbacks"] = [stop]
    hist = model.fit(x_train, y_train, **fit)
    if curves is not None:
        curves.update({k: [float(v) for v in vals] for k, vals in hist.history.items()})
    return float(model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])


def run_two_arg(arity, seed, data, args, out):
    import keras

    from keras_bioact import analysis, nin
    from keras_bioact.layers import InnerNonlinearity

    keras.utils.set_random_seed(seed)
    g = InnerNonlinearity(arity=arity, hidden_units=tuple(args.inner_hidden), name="inner")
    shape = data[0][0].shape[1:]
    n_classes = int(np.max(data[0][1])) + 1
    model = nin.two_arg_mlp(shape, args.widths, n_classes, arity=arity, inner=g, dropout=args.dropout)
    result = {"params": int(model.count_params())}
    result["pretrain_mse"] = nin.pretrain_inner(
        g, epochs=args.pretrain_epochs, seed=seed, grid_size=args.pretrain_grid
    )
    if arity == 2:
        result["xor_pretrained"] = analysis.xor_score(g).as_dict()
        if out is not None:
            analysis.plot_surface(
                g, path=out / f"g_pretrained_seed{seed}.png", title=f"pre-trained g, seed {seed}"
            )
    result["curves"] = {}
    result["acc_joint"] = _fit_eval(model, data, args, result["curves"])
    if arity == 2:
        result["xor_learned"] = analysis.xor_score(g).as_dict()
        if out is not None:
            analysis.plot_surface(g, path=out / f"g_learned_seed{seed}.png")
    elif out is not None:
        analysis.plot_surface(g, path=out / f"g_1arg_learned_seed{seed}.png")
    if not args.no_session3:
        nin.freeze_inner(model)
        nin.reinitialize_outer(model, seed=seed + 1000)
        result["curves_frozen_g"] = {}
        result["acc_frozen_g"] = _fit_eval(model, data, args, result["curves_frozen_g"])
    return result


def run_relu(seed, data, args):
    import keras

    from keras_bioact import nin

    keras.utils.set_random_seed(seed)
    shape = data[0][0].shape[1:]
    n_classes = int(np.max(data[0][1])) + 1
    input_dim = int(np.prod(shape))
    widths = nin.param_matched_relu_widths(
        input_dim, args.widths, n_classes, arity=2, inner_hidden=tuple(args.inner_hidden)
    )
    model = nin.relu_mlp(shape, widths, n_classes, dropout=args.dropout)
    result = {"params": int(model.count_params()), "widths": widths, "curves": {}}
    result["acc_joint"] = _fit_eval(model, data, args, result["curves"])
    return result


def glu_mlp_params(input_dim, units, depth, output_dim):
    """Weights of a gated MLP: `depth` layers `Dense(2 * units)` (gated down to `units`), logits Dense."""
    total, n_in = 0, int(input_dim)
    for _ in range(depth):
        total += n_in * 2 * units + 2 * units
        n_in = units
    return total + n_in * output_dim + output_dim


def glu_mlp_width(input_dim, depth, output_dim, target, tolerance=0.02):
    """The common gated width u whose `glu_mlp_params` is closest to `target` (within `tolerance`)."""
    units = min(range(1, 4096), key=lambda u: abs(glu_mlp_params(input_dim, u, depth, output_dim) - target))
    count = glu_mlp_params(input_dim, units, depth, output_dim)
    if abs(count - target) / target > tolerance:
        raise ValueError(
            f"glu_mlp_width: the closest gated width {units} has {count} weights, not {target} ± 2 %."
        )
    return units


def run_glu(kind, seed, data, args):
    import keras
    from keras import ops

    from keras_bioact import nin

    keras.utils.set_random_seed(seed)
    shape = data[0][0].shape[1:]
    n_classes = int(np.max(data[0][1])) + 1
    input_dim = int(np.prod(shape))
    target = nin.two_arg_mlp_param_count(
        input_dim, args.widths, n_classes, arity=2, inner_hidden=tuple(args.inner_hidden)
    )
    units = glu_mlp_width(input_dim, len(args.widths), n_classes, target)
    act = getattr(ops, GLU[kind])
    inputs = keras.Input(tuple(shape))
    x = keras.layers.Flatten()(inputs) if len(shape) > 1 else inputs
    for i in range(len(args.widths)):
        z = keras.layers.Dense(2 * units, name=f"gated_{i}")(x)
        z = keras.layers.LayerNormalization(center=False, scale=False, epsilon=1e-5)(z)  # as TwoArgDense
        x = act(z[..., :units]) * z[..., units:]
        if args.dropout:
            x = keras.layers.Dropout(args.dropout)(x)
    model = keras.Model(inputs, keras.layers.Dense(n_classes, name="logits")(x), name=f"{kind}_mlp")
    result = {"params": int(model.count_params()), "widths": [units] * len(args.widths), "curves": {}}
    result["acc_joint"] = _fit_eval(model, data, args, result["curves"])
    return result


# Flags that define the protocol of one run; a stored run made with other values is not reused.
PROTOCOL_KEYS = (
    "dataset", "epochs", "pretrain_epochs", "pretrain_grid", "widths", "inner_hidden", "dropout",
    "batch_size", "learning_rate", "train_limit", "test_limit", "no_session3", "patience", "validation_split",
)  # fmt: skip


def _store(args):
    if args.results is None:
        return None
    return RunStore(args.results, "two_arg_xor", {k: getattr(args, k) for k in PROTOCOL_KEYS})


def _save(store, setting, name, seed, record, args, seconds):
    """One run file: test accuracy/error of session II (and III), training curves, xor_score of g."""
    loss = record["curves"].get("loss") or [None]
    metrics = {
        "test_accuracy": record["acc_joint"],
        "test_error": 1.0 - record["acc_joint"],
        "final_train_loss": loss[-1],
        "mean_train_loss": float(np.mean(loss)) if None not in loss else None,
        "epochs_trained": len(record["curves"].get("loss", [])),
    }
    if "acc_frozen_g" in record:
        metrics.update(
            frozen_g_test_accuracy=record["acc_frozen_g"], frozen_g_test_error=1 - record["acc_frozen_g"]
        )
    if "xor_learned" in record:
        metrics.update(
            xor_score=record["xor_learned"]["score"], xor_score_pretrained=record["xor_pretrained"]["score"]
        )
    arch = (
        f"MLP, pre-activation widths {args.widths} (2-arg, 1-arg; one shared inner g {args.inner_hidden}, "
        "pre-trained), and the parameter-matched ReLU, GEGLU and SwiGLU MLPs"
    )
    extra = {"dataset": args.dataset, "architecture": arch, "params": record["params"], "record": record}
    store.save(
        setting, name, seed, metrics=metrics, curves=record["curves"], wall_time_s=seconds, extra=extra
    )


def summarize(runs):
    summary = {}
    for name in MODELS:
        rows = [r[name] for r in runs]
        entry = {
            "params": rows[0]["params"],
            "acc_joint": describe([r["acc_joint"] for r in rows]),
            "acc_frozen_g": describe([r.get("acc_frozen_g") for r in rows]),
        }
        if name == "2-arg":
            for key in ("xor_pretrained", "xor_learned"):
                entry[key] = describe([r[key]["score"] for r in rows])
                entry[key + "_fraction_xor"] = float(np.mean([r[key]["is_xor"] for r in rows]))
                entry[key + "_fraction_saddle"] = float(np.mean([r[key]["hessian_det"] < 0 for r in rows]))
        summary[name] = entry
    return summary


def format_table(summary, n_seeds):
    def ms(x, scale=100.0, digits=1):
        return f"{fmt(x['mean'], digits, scale)} ± {fmt(x['std'], digits, scale)}" if x["n"] else "-"

    lines = [
        f"| model | params | test acc % joint (n={n_seeds}) | test acc % frozen g, fresh outer "
        "| xor_score of g |",
        "|---|---|---|---|---|",
    ]
    for name in MODELS:
        e = summary[name]
        xor = "-"
        if name == "2-arg":
            xor = (
                f"pre-trained {ms(e['xor_pretrained'], 1, 2)} → learned {ms(e['xor_learned'], 1, 2)} "
                f"(is_xor {e['xor_learned_fraction_xor']:.0%}, "
                f"saddle det<0 {e['xor_learned_fraction_saddle']:.0%})"
            )
        lines.append(f"| {name} | {e['params']:,} | {ms(e['acc_joint'])} | {ms(e['acc_frozen_g'])} | {xor} |")
    return "\n".join(lines)


def merge(args):
    runs, sources = [], []
    for directory in args.merge:
        saved = json.loads((directory / "results.json").read_text())
        runs.extend(saved["runs"])
        sources.append({"dir": str(directory), "command": saved["command"], "seconds": saved["seconds"]})
    summary = summarize(runs)
    table = format_table(summary, len(runs))
    print(table)
    result = {"merged_from": sources, "runs": runs, "summary": summary}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out / "results.json", result)
        (args.out / "table.md").write_text(table + "\n")
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.merge:
        return merge(args)
    from tqdm import tqdm

    data = load_data(args)
    out = args.out
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    store, setting = _store(args), f"{args.dataset}-mlp{'-'.join(str(w) for w in args.widths)}"
    runs = []
    with tqdm(total=len(args.seeds) * len(MODELS), desc="two_arg_xor", file=sys.stderr) as bar:
        for seed in args.seeds:
            run = {"seed": seed}
            for name in MODELS:
                bar.set_postfix(seed=seed, model=name)
                stored = store.existing(setting, name, seed) if store else None
                if stored is not None:
                    run[name] = stored["record"]
                    bar.update()
                    continue
                began = time.perf_counter()
                if name == "relu":
                    run[name] = run_relu(seed, data, args)
                elif name in GLU:
                    run[name] = run_glu(name, seed, data, args)
                else:
                    run[name] = run_two_arg(2 if name == "2-arg" else 1, seed, data, args, out)
                if store:
                    _save(store, setting, name, seed, run[name], args, time.perf_counter() - began)
                bar.update()
            runs.append(run)
    summary = summarize(runs)
    import keras

    result = {
        "command": "python recipes/two_arg_xor.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "backend": keras.backend.backend(),
        "dataset": args.dataset,
        "train_size": int(len(data[0][1])),
        "test_size": int(len(data[1][1])),
        "args": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.time() - start, 1),
        "runs": runs,
        "summary": summary,
    }
    table = format_table(summary, len(args.seeds))
    print(table)
    print(
        f"({args.dataset}, {result['train_size']} train / {result['test_size']} test, {result['seconds']} s)"
    )
    if out is not None:
        write_json_atomic(out / "results.json", result)
        (out / "table.md").write_text(table + "\n")
    return result


if __name__ == "__main__":
    main()
