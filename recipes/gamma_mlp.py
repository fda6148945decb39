"""Geadah et al. (2020, 2022): static, homogeneous and heterogeneous gamma activations (SPEC 1, 3).

gamma(x; n, s) = (1 - s) softplus(n x) / n + s sigmoid(n x), n = gain, s = saturation.

Claims checked (the papers use RNNs; this recipe applies the same protocol to an MLP):
* adaptation (learning n and s by gradient descent) improves learning speed and performance "in
  some cases" over fixed activations;
* the (n, s) that work best are considerably different from ReLU (s = 0, large n) and the
  sigmoid (s = 1);
* networks with (heterogeneous) adaptive activations are more robust to input noise (2022).

Protocol: the same MLP (`--depth` x `--width`, Adam, He-normal kernels) with
* `relu`: the baseline;
* `static:n,s`: a fixed gamma at each point of the grid `--grid-n` x `--grid-s` (paper grid:
  n in 1..20, s in 0..1);
* `homogeneous`: one learned (n, s) pair per layer (`GammaActivation(shared_axes="all")`);
* `heterogeneous`: one learned (n, s) pair per neuron (`GammaActivation()`);
learned pairs start at the papers' n0 = 5 + 2 U(0, 1), s0 = 0 (`GammaGain`). One run per seed;
the per-epoch validation curve is measured on a seeded `--validation-fraction` of the training
images (not trained on), and the test set is scored once, after training.
Reports training-loss curves, final test error mean ± sample std, robustness tables (Gaussian noise,
FGSM, PGD), a scatter plot of where the learned per-neuron (n, s) end up, the per-epoch
trajectory of the learned parameters and a heat map of the static grid.

CPU default (digits, a few minutes on 2 cores):
    python recipes/gamma_mlp.py --out runs/gamma
Paper scale (GPU): Fashion-MNIST (or `--dataset idx:/data/mnist`), the paper's full grid, 100 epochs:
    python recipes/gamma_mlp.py --paper-scale --out runs/gamma_paper
"""

import pathlib
import sys
import time

import keras
import numpy as np

from keras_bioact import stats
from keras_bioact.layers import GammaActivation

if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes.common import util as ru  # noqa: E402
from recipes.common.run_results import RunStore, write_json_atomic  # noqa: E402
from recipes.common.tables import fmt_mean_std, table  # noqa: E402

PAPER_GRID_N = [1.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0]
PAPER_GRID_S = [0.0, 0.25, 0.5, 0.75, 1.0]
PAPER_SCALE = {
    "dataset": "fashion_mnist",
    "epochs": 100,
    "grid_n": PAPER_GRID_N,
    "grid_s": PAPER_GRID_S,
    "seeds": [0, 1, 2, 3, 4],
    "batch_size": 100,
    "lr": 1e-4,
    "width": 256,
    "robustness_samples": 0,
}


def variant_names(args):
    """ReLU and the learned variants first, then the static grid (a grid cut short has the claims' sides)."""
    return ["relu", "homogeneous", "heterogeneous"] + [
        f"static:{n:g},{s:g}" for n in args.grid_n for s in args.grid_s
    ]


def activation(name, seed):
    if name == "relu":
        return keras.layers.Activation("relu")
    if name.startswith("static:"):
        n, s = (float(v) for v in name[len("static:") :].split(","))
        return GammaActivation(n_initializer=n, s_initializer=s, shared_axes="all", trainable_params=())
    from keras_bioact.initializers import GammaGain

    shared = "all" if name == "homogeneous" else None
    return GammaActivation(n_initializer=GammaGain(seed=seed), s_initializer="zeros", shared_axes=shared)


def build_mlp(name, input_dim, depth, width, n_classes, seed):
    layers = [keras.Input((input_dim,))]
    for i in range(depth):
        layers += [
            keras.layers.Dense(width, kernel_initializer=keras.initializers.HeNormal(seed * 1000 + i)),
            activation(name, seed * 1000 + i),
        ]
    layers.append(keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed)))
    return keras.Sequential(layers)


def gamma_layers(model):
    return [layer for layer in model.layers if isinstance(layer, GammaActivation)]


def gamma_params(model):
    """Per layer: {"n": [...], "s": [...]} (flattened) of every GammaActivation."""
    return [
        {
            "n": keras.ops.convert_to_numpy(g.n).reshape(-1).tolist(),
            "s": keras.ops.convert_to_numpy(g.s).reshape(-1).tolist(),
        }
        for g in gamma_layers(model)
    ]


class GammaTrace(keras.callbacks.Callback):
    """Records the mean and std of each GammaActivation's n and s before training and after each epoch."""

    def __init__(self):
        super().__init__()
        self.trace = []

    def _record(self):
        row = []
        for p in gamma_params(self.model):
            n, s = np.array(p["n"]), np.array(p["s"])
            row.append({"n_mean": n.mean(), "n_std": n.std(), "s_mean": s.mean(), "s_std": s.std()})
        self.trace.append(row)

    def on_train_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()


def make_parser():
    p = ru.base_parser(
        __doc__.split("\n\n")[0], epochs=20, batch_size=32, optimizer="adam", lr=1e-3, out="runs/gamma_mlp"
    )
    p.add_argument("--grid-n", type=float, nargs="*", default=[1.0, 10.0], help="static grid: gains n")
    p.add_argument("--grid-s", type=float, nargs="*", default=[0.0, 1.0], help="static grid: saturations s")
    p.add_argument("--depth", type=int, default=3, help="hidden layers")
    p.add_argument("--width", type=int, default=128, help="units per hidden layer")
    p.add_argument("--no-learned", action="store_true", help="skip the homogeneous/heterogeneous variants")
    p.add_argument("--no-relu", action="store_true", help="skip the ReLU baseline")
    p.add_argument(
        "--results",
        default=None,
        help="also write each finished (variant, seed) as RESULTS/gamma_mlp/<dataset>-mlp<depth>x<width>/"
        "<variant>/seed<k>.json, and skip the runs already there (continue an interrupted grid)",
    )
    return p


# Flags that define the protocol of one run; a stored run made with other values is not reused.
PROTOCOL_KEYS = (
    "dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "depth", "width", "train_limit",
    "test_limit", "validation_fraction", "noise", "fgsm_eps", "pgd_eps", "pgd_steps", "robustness_samples",
)  # fmt: skip
LEARNED = ("homogeneous", "heterogeneous")
NOT_METRICS = ("history", "seed", "robustness", "gamma_params", "trace")  # record fields kept outside metrics


def _stored_record(data):
    """The in-memory run record of a stored run file (inverse of what `main` saves)."""
    record = {k: v for k, v in data["metrics"].items() if k != "noise_max_sigma_accuracy"}
    record.update(history=data["curves"], seed=data["seed"], robustness=data["robustness"])
    if data["variant"] in LEARNED:
        record.update(gamma_params=data["gamma_params"], trace=data["trace"])
    return record


def _save(store, setting, name, record, model, args, started):
    """Write one finished run as a run file (`recipes.common.run_results`)."""
    metrics = {k: v for k, v in record.items() if k not in NOT_METRICS}
    noise = record["robustness"].get("gaussian_noise")
    if noise:  # accuracy at the largest noise sigma: the robustness claim's metric
        metrics["noise_max_sigma_accuracy"] = noise["accuracies"][-1]
    extra = {
        "dataset": args.dataset,
        "architecture": f"MLP {args.depth}x{args.width}",
        "epochs": args.epochs,
        "params": int(model.count_params()),
        "robustness": record["robustness"],
    }
    if name in LEARNED:
        extra.update(gamma_params=record["gamma_params"], trace=record["trace"])
    store.save(
        setting, name, record["seed"], metrics=metrics, curves=record["history"],
        wall_time_s=time.perf_counter() - started, extra=extra,
    )  # fmt: skip


def _learned_stats(recs):
    """Pooled statistics of the final learned (n, s) over layers, neurons and seeds."""
    n = np.concatenate([np.array(layer["n"]) for r in recs for layer in r["gamma_params"]])
    s = np.concatenate([np.array(layer["s"]) for r in recs for layer in r["gamma_params"]])
    return {
        "n_median": float(np.median(n)),
        "n_p10": float(np.percentile(n, 10)),
        "n_p90": float(np.percentile(n, 90)),
        "s_median": float(np.median(s)),
        "s_p10": float(np.percentile(s, 10)),
        "s_p90": float(np.percentile(s, 90)),
        "frac_s_outside_0_1": float(np.mean((s < 0) | (s > 1))),
        "frac_n_below_init_5": float(np.mean(n < 5.0)),
        "count": int(n.size),
    }


def claims(summary, learned):
    out = {}
    static = {k: v for k, v in summary.items() if k.startswith("static:")}
    adaptive = {k: v for k, v in summary.items() if k in ("homogeneous", "heterogeneous")}
    fixed = dict(static)
    if "relu" in summary:
        fixed["relu"] = summary["relu"]
    if adaptive and fixed:
        best_fixed_err = min(fixed, key=lambda k: fixed[k]["test_error"][0])
        best_fixed_auc = min(fixed, key=lambda k: fixed[k]["mean_train_loss"][0])
        out["adaptation_helps"] = {
            "measure": "test error and mean training loss (AUC over epochs), mean over seeds, vs the best "
            "fixed activation (static grid point or ReLU)",
            "best_fixed_by_error": [best_fixed_err, fixed[best_fixed_err]["test_error"]],
            "best_fixed_by_train_loss": [best_fixed_auc, fixed[best_fixed_auc]["mean_train_loss"]],
            "adaptive": {
                k: {"test_error": v["test_error"], "mean_train_loss": v["mean_train_loss"]}
                for k, v in adaptive.items()
            },
            "held_error": any(
                v["test_error"][0] < fixed[best_fixed_err]["test_error"][0] for v in adaptive.values()
            ),
            "held_speed": any(
                v["mean_train_loss"][0] < fixed[best_fixed_auc]["mean_train_loss"][0]
                for v in adaptive.values()
            ),
        }
    if static:
        best_static = min(static, key=lambda k: static[k]["test_error"][0])
        n, s = (float(v) for v in best_static[len("static:") :].split(","))
        out["optimum_differs_from_relu_sigmoid"] = {
            "best_static_point": {"n": n, "s": s, "test_error": static[best_static]["test_error"]},
            "learned": learned,
            "note": "ReLU-like means s = 0 and large n; sigmoid means s = 1",
        }
    if "heterogeneous" in summary and "relu" in summary:
        rob_h = summary["heterogeneous"]["robustness"].get("gaussian_noise")
        rob_r = summary["relu"]["robustness"].get("gaussian_noise")
        if rob_h and rob_r:
            out["noise_robustness"] = {
                "sigmas": rob_h["strengths"],
                "heterogeneous": rob_h["mean"],
                "relu": rob_r["mean"],
                "held": rob_h["mean"][-1] > rob_r["mean"][-1],
            }
    return out


def plot_learned(runs, path, title):
    """Scatter of the final learned per-neuron (n, s), coloured by layer; homogeneous pairs as stars."""
    plt = ru._pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r in runs.get("heterogeneous", []):
        for i, layer in enumerate(r["gamma_params"]):
            ax.scatter(
                layer["n"],
                layer["s"],
                s=6,
                alpha=0.4,
                color=colors[i % len(colors)],
                label=f"heterogeneous, layer {i + 1}" if r is runs["heterogeneous"][0] else None,
            )
    for r in runs.get("homogeneous", []):
        for i, layer in enumerate(r["gamma_params"]):
            ax.scatter(
                layer["n"],
                layer["s"],
                marker="*",
                s=160,
                edgecolor="k",
                color=colors[i % len(colors)],
                label=f"homogeneous, layer {i + 1}" if r is runs["homogeneous"][0] else None,
            )
    ax.plot([5, 7], [0, 0], color="k", lw=4, alpha=0.5, label="initial (n0 = 5 + 2U, s0 = 0)")
    ax.axhline(0, color="grey", lw=0.5, ls="--")
    ax.axhline(1, color="grey", lw=0.5, ls="--")
    ax.annotate(
        "ReLU-like: s=0, n large", (0.98, 0.02), xycoords="axes fraction", ha="right", fontsize="small"
    )
    ax.annotate("sigmoid: s=1", (0.98, 0.95), xycoords="axes fraction", ha="right", fontsize="small")
    ax.set_xscale("log")
    ax.set(xlabel="gain n", ylabel="saturation s", title=title)
    ax.legend(fontsize="x-small", loc="center left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_trajectories(runs, path, title):
    """Mean learned n and s per layer vs epoch (mean over seeds) for the learned variants."""
    plt = ru._pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, ls in (("homogeneous", "--"), ("heterogeneous", "-")):
        recs = runs.get(name, [])
        if not recs:
            continue
        n_layers = len(recs[0]["trace"][0])
        for i in range(n_layers):
            for ax, key in zip(axes, ("n_mean", "s_mean"), strict=True):
                vals = np.array([[row[i][key] for row in r["trace"]] for r in recs]).mean(axis=0)
                ax.plot(np.arange(len(vals)), vals, ls=ls, label=f"{name} layer {i + 1}")
    axes[0].set(xlabel="epoch", ylabel="mean n", title="gain")
    axes[1].set(xlabel="epoch", ylabel="mean s", title="saturation")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="x-small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_grid(summary, grid_n, grid_s, path, title):
    """Heat map of the static grid's mean test error."""
    if not grid_n or not grid_s:
        return None
    plt = ru._pyplot()
    err = np.array([[summary[f"static:{n:g},{s:g}"]["test_error"][0] * 100 for n in grid_n] for s in grid_s])
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(grid_n), 1.2 + 0.6 * len(grid_s)))
    im = ax.imshow(err, origin="lower", aspect="auto", cmap="viridis_r")
    for (i, j), v in np.ndenumerate(err):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize="x-small", color="w")
    ax.set_xticks(range(len(grid_n)))
    ax.set_xticklabels([f"{n:g}" for n in grid_n])
    ax.set_yticks(range(len(grid_s)))
    ax.set_yticklabels([f"{s:g}" for s in grid_s])
    ax.set(xlabel="n", ylabel="s", title=title)
    fig.colorbar(im, ax=ax, label="test error %")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = make_parser()
    args = ru.parse_args(parser, argv, PAPER_SCALE)
    if any(n <= 0 for n in args.grid_n):
        parser.error("--grid-n: every gain n must be > 0")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test, info = ru.load_data(args, flatten=True)
    names = [
        v
        for v in variant_names(args)
        if not (args.no_relu and v == "relu")
        and not (args.no_learned and v in ("homogeneous", "heterogeneous"))
    ]
    if not names:
        parser.error("no variant left to run")
    # Seed-major: every variant gets its first seed before any gets its second.
    jobs = [(name, seed) for seed in args.seeds for name in names]
    store = None
    if args.results:
        store = RunStore(args.results, "gamma_mlp", {k: getattr(args, k) for k in PROTOCOL_KEYS})
    setting = f"{args.dataset}-mlp{args.depth}x{args.width}"
    runs = {name: [] for name in names}
    for name, seed in ru.progress(jobs, desc="gamma_mlp"):
        stored = store.existing(setting, name, seed) if store else None
        if stored is not None:
            runs[name].append(_stored_record(stored))
            continue
        started = time.perf_counter()
        ru.set_seed(seed)
        model = build_mlp(name, train[0].shape[1], args.depth, args.width, info["n_classes"], seed)
        trace = GammaTrace()
        tb = ru.tensorboard_callback(args, name.replace(":", "_").replace(",", "_"), f"seed{seed}")
        record = ru.train_classifier(model, train, test, args, seed, callbacks=[trace, tb])
        record["seed"] = seed
        if name in LEARNED:
            record["gamma_params"] = gamma_params(model)
            record["trace"] = trace.trace
        record["robustness"] = ru.robustness_tables(model, test, args)
        runs[name].append(record)
        if store:
            _save(store, setting, name, record, model, args, started)
        # Finished runs survive an interruption.
        write_json_atomic(out / "runs.partial.json", {"config": vars(args), "runs": runs})
        keras.backend.clear_session()

    summary = {
        name: {
            "test_error": stats.mean_std([r["test_error"] for r in recs]),
            "final_train_loss": stats.mean_std([r["final_train_loss"] for r in recs]),
            "mean_train_loss": stats.mean_std([r["mean_train_loss"] for r in recs]),
            "train_time_s": stats.mean_std([r["train_time_s"] for r in recs]),
            "robustness": ru.aggregate_robustness([r["robustness"] for r in recs]),
        }
        for name, recs in runs.items()
    }
    learned = {k: _learned_stats(runs[k]) for k in ("homogeneous", "heterogeneous") if k in runs}
    curve_names = [k for k in runs if not k.startswith("static:")]
    static = {k: v for k, v in summary.items() if k.startswith("static:")}
    if static:
        best = min(static, key=lambda k: static[k]["test_error"][0])
        curve_names.insert(1 if "relu" in runs else 0, best)
        plot_grid(
            summary,
            args.grid_n,
            args.grid_s,
            out / "static_grid.png",
            f"static gamma on {args.dataset}: test error %",
        )
    title = f"gamma MLP {args.depth}x{args.width} on {args.dataset}"
    ru.plot_curves(
        {k: [r["history"]["loss"] for r in runs[k]] for k in curve_names},
        out / "loss.png",
        title=f"{title}: training loss (best static point shown)",
    )
    ru.plot_bars(
        {k: [r["test_error"] for r in recs] for k, recs in runs.items()},
        out / "test_error.png",
        title=f"{title}: final test error",
    )
    ru.plot_robustness(
        {k: summary[k]["robustness"] for k in curve_names}, out / "robustness.png", title=title
    )
    if learned:
        plot_learned(runs, out / "learned_ns.png", f"{title}: learned (n, s)")
        plot_trajectories(runs, out / "trajectories.png", f"{title}: learned parameters during training")
    results = {
        "recipe": "gamma_mlp",
        "paper": "Geadah et al. 2020 (arXiv:2006.12253); Geadah et al. 2022/2024 (PLOS Comput Biol)",
        "config": vars(args),
        "data": info,
        "environment": ru.environment(),
        "runs": runs,
        "summary": summary,
        "learned": learned,
        "claims": claims(summary, learned),
    }
    write_json_atomic(out / "results.json", results)
    (out / "runs.partial.json").unlink(missing_ok=True)
    print(report(results))
    return 0


def report(results):
    rows = []
    for name, s in results["summary"].items():
        recs = results["runs"][name]
        rob = s["robustness"]

        def at(attack, rob=rob):
            return f"{100 * rob[attack]['mean'][-1]:.1f}" if attack in rob else "-"

        rows.append(
            [
                name,
                fmt_mean_std([r["test_error"] for r in recs], scale=100),
                fmt_mean_std([r["final_train_loss"] for r in recs], digits=4),
                fmt_mean_std([r["mean_train_loss"] for r in recs], digits=3),
                at("gaussian_noise"),
                at("fgsm"),
                at("pgd"),
            ]
        )
    cfg = results["config"]
    lines = [
        f"\n### gamma MLP ({results['data']['dataset']}, {len(cfg['seeds'])} seeds, "
        f"{cfg['epochs']} epochs)\n",
        table(
            [
                "variant",
                "test error %",
                "final train loss",
                "mean train loss (AUC)",
                "acc % noise (max σ)",
                "acc % FGSM (max ε)",
                "acc % PGD (max ε)",
            ],
            rows,
        ),
    ]
    for name, st in results["learned"].items():
        lines.append(
            f"\n{name}: learned n median {st['n_median']:.2f} (10-90%: {st['n_p10']:.2f}-{st['n_p90']:.2f}), "
            f"s median {st['s_median']:.3f} ({st['s_p10']:.3f}-{st['s_p90']:.3f}), "
            f"{100 * st['frac_s_outside_0_1']:.0f}% of s outside [0, 1]"
        )
    c = results["claims"]
    if "adaptation_helps" in c:
        lines.append(
            f"adaptation beats best fixed: error {c['adaptation_helps']['held_error']}, "
            f"speed {c['adaptation_helps']['held_speed']}"
        )
    if "noise_robustness" in c:
        lines.append(
            f"heterogeneous more noise-robust than relu at max sigma: {c['noise_robustness']['held']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
