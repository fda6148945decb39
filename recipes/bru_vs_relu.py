"""Bhumbra (2018), "Deep learning improved by biological activation functions" (SPEC section 4).

Claim: networks with bionodal root units (ERU / ORU) train faster than ReLU / ELU networks of the
same architecture and give the best-generalised models.

Protocol (SPEC 4.2): the same MLP (`--depths` hidden layers of `--width` units, SGD) and a small
CNN (conv16-pool-conv32-pool-dense) with each activation in `--variants`; each family keeps its own
init rule (ReLU / ELU: He normal; ERU / ORU: `BRUInitializer(r, form)`, variance
`6 / (fan_in (2r + 1))` resp. `2 / (fan_in r)`); one run per seed, its per-epoch validation curve
measured on a seeded `--validation-fraction` of the training images (not trained on), the test set
scored once, after training. Reports training-loss-vs-epoch curves, final test error mean ± sample
std over seeds, and Gaussian-noise / FGSM / PGD robustness tables.

Variants: `relu`, `elu`, `eru:R`, `oru:R` (fixed radix R in every layer), or `eru:A-B` / `oru:A-B`
(radix decreasing linearly from A in the first hidden layer to B in the last: the paper's
"higher r in early layers" scheme).

CPU default (digits, a few minutes on 2 cores):
    python recipes/bru_vs_relu.py --out runs/bru
Paper scale (GPU): MNIST from a directory of IDX files, 200 epochs, 4/6/8 hidden layers:
    python recipes/bru_vs_relu.py --paper-scale --dataset idx:/data/mnist --out runs/bru_paper
"""

import pathlib
import re
import sys
import time

import keras

from keras_bioact import stats
from keras_bioact.initializers import BRUInitializer
from keras_bioact.layers import BRU

if __package__ in (None, ""):  # run as `python recipes/<script>.py`: import `recipes.common` from the root
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes.common import util as ru  # noqa: E402
from recipes.common.run_results import RunStore, write_json_atomic  # noqa: E402
from recipes.common.tables import fmt_mean_std, table  # noqa: E402

DEFAULT_VARIANTS = ["relu", "elu", "eru:2", "eru:3-1", "oru:2"]
PAPER_SCALE = {
    "dataset": "fashion_mnist",
    "epochs": 200,
    "depths": [4, 6, 8],
    "variants": [
        "relu",
        "elu",
        "eru:1.5",
        "eru:2",
        "eru:3",
        "eru:3-1",
        "oru:1.5",
        "oru:2",
        "oru:3",
        "oru:3-1",
    ],
    "seeds": [0, 1, 2, 3, 4],
    "batch_size": 128,
    "robustness_samples": 0,
}
_SPEC = re.compile(r"^(eru|oru):([0-9.]+)(?:-([0-9.]+))?$")


def parse_variant(spec):
    """`"relu"` | `"elu"` | `"eru:R"` | `"oru:R"` | `"eru:A-B"` -> (family, r_first, r_last)."""
    if spec in ("relu", "elu"):
        return spec, None, None
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"variant {spec!r}: use relu, elu, eru:R, oru:R or eru:A-B / oru:A-B (radix > 0).")
    form, a = m.group(1), float(m.group(2))
    b = float(m.group(3)) if m.group(3) else a
    if a <= 0 or b <= 0:
        raise ValueError(f"variant {spec!r}: the radix must be > 0.")
    return form, a, b


def radii(spec, n):
    """Radix per hidden layer (None for relu/elu)."""
    family, a, b = parse_variant(spec)
    if a is None:
        return [None] * n
    return [a + (b - a) * i / max(n - 1, 1) for i in range(n)]


def init_and_activation(family, r, seed):
    """(kernel initializer, activation layer) of one hidden layer, by the family's own init rule."""
    if family in ("relu", "elu"):
        return keras.initializers.HeNormal(seed=seed), keras.layers.Activation(family)
    return BRUInitializer(r, family, seed=seed), BRU(form=family, r=r)


def build_mlp(spec, input_dim, depth, width, n_classes, seed):
    family, _, _ = parse_variant(spec)
    layers = [keras.Input((input_dim,))]
    for i, r in enumerate(radii(spec, depth)):
        init, act = init_and_activation(family, r, seed * 1000 + i)
        layers += [keras.layers.Dense(width, kernel_initializer=init), act]
    layers.append(keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed)))
    return keras.Sequential(layers, name=f"mlp_{family}")


def build_cnn(spec, input_shape, width, n_classes, seed):
    """conv(16,3x3)-act-pool-conv(32,3x3)-act-pool-flatten-dense(width)-act-dense(classes)."""
    family, _, _ = parse_variant(spec)
    rs = radii(spec, 3)
    layers = [keras.Input(input_shape)]
    for i, filters in enumerate((16, 32)):
        init, act = init_and_activation(family, rs[i], seed * 1000 + i)
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=init),
            act,
            keras.layers.MaxPooling2D(2),
        ]
    init, act = init_and_activation(family, rs[2], seed * 1000 + 2)
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(width, kernel_initializer=init),
        act,
        keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed)),
    ]
    return keras.Sequential(layers, name=f"cnn_{family}")


def make_parser():
    p = ru.base_parser(
        __doc__.split("\n\n")[0], epochs=30, batch_size=32, optimizer="sgd", lr=0.05, out="runs/bru_vs_relu"
    )
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="activations to compare")
    p.add_argument("--archs", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"])
    p.add_argument("--depths", type=int, nargs="+", default=[6], help="MLP hidden layers (paper: 4-8)")
    p.add_argument("--width", type=int, default=128, help="units per hidden layer (paper: 128)")
    p.add_argument(
        "--results",
        default=None,
        help="also write each finished (arch, variant, seed) as RESULTS/bru_vs_relu/<dataset>-<arch>/"
        "<variant>/seed<k>.json, and skip the runs already there (continue an interrupted grid)",
    )
    return p


# Flags that define the protocol of one run; a stored run made with other values is not reused.
PROTOCOL_KEYS = (
    "dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "width", "train_limit", "test_limit",
    "validation_fraction", "noise", "fgsm_eps", "pgd_eps", "pgd_steps", "robustness_samples",
)  # fmt: skip


def _stored_record(data):
    """The in-memory run record of a stored run file (inverse of what `main` saves)."""
    record = dict(data["metrics"])
    record.update(history=data["curves"], seed=data["seed"])
    record.update(radii=data["radii"], robustness=data["robustness"])
    return record


def _is_bru(spec):
    return parse_variant(spec)[0] in ("eru", "oru")


def claims(summary):
    """Check the paper's claims per architecture on the measured summary."""
    out = {}
    for arch, variants in summary.items():
        base = {k: v for k, v in variants.items() if not _is_bru(k.split("@")[0])}
        bru = {k: v for k, v in variants.items() if _is_bru(k.split("@")[0])}
        if not base or not bru:
            continue
        best_base_auc = min(base, key=lambda k: base[k]["mean_train_loss"][0])
        best_bru_auc = min(bru, key=lambda k: bru[k]["mean_train_loss"][0])
        best_err = min(variants, key=lambda k: variants[k]["test_error"][0])
        best_base_err = min(base, key=lambda k: base[k]["test_error"][0])
        best_bru_err = min(bru, key=lambda k: bru[k]["test_error"][0])
        out[arch] = {
            "trains_faster": {
                "measure": "mean training loss over epochs (area under the curve), mean over seeds",
                "best_bru": [best_bru_auc, bru[best_bru_auc]["mean_train_loss"]],
                "best_relu_elu": [best_base_auc, base[best_base_auc]["mean_train_loss"]],
                "held": bru[best_bru_auc]["mean_train_loss"][0] < base[best_base_auc]["mean_train_loss"][0],
            },
            "best_generalised": {
                "measure": "final test error, mean over seeds",
                "best_variant": best_err,
                "best_bru": [best_bru_err, bru[best_bru_err]["test_error"]],
                "best_relu_elu": [best_base_err, base[best_base_err]["test_error"]],
                "held": _is_bru(best_err.split("@")[0]),
                "beyond_one_std": bru[best_bru_err]["test_error"][0] + bru[best_bru_err]["test_error"][1]
                < base[best_base_err]["test_error"][0],
            },
        }
    return out


def main(argv=None):
    parser = make_parser()
    args = ru.parse_args(parser, argv, PAPER_SCALE)
    for spec in args.variants:
        try:
            parse_variant(spec)
        except ValueError as e:
            parser.error(str(e))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    flat_train, flat_test, info = ru.load_data(args, flatten=True)
    img_train, img_test, _ = ru.load_data(args, flatten=False)

    jobs = []
    for arch in args.archs:
        for depth in args.depths if arch == "mlp" else [None]:
            for spec in args.variants:
                for seed in args.seeds:
                    jobs.append((arch, depth, spec, seed))
    store = None
    if args.results:
        store = RunStore(args.results, "bru_vs_relu", {k: getattr(args, k) for k in PROTOCOL_KEYS})
    runs, summary = {}, {}
    for arch, depth, spec, seed in ru.progress(jobs, desc="bru_vs_relu"):
        group = arch if depth is None else f"mlp{depth}"
        setting = f"{args.dataset}-{group}"
        stored = store.existing(setting, spec, seed) if store else None
        if stored is not None:
            runs.setdefault(group, {}).setdefault(spec, []).append(_stored_record(stored))
            continue
        started = time.perf_counter()
        ru.set_seed(seed)
        if arch == "mlp":
            train, test = flat_train, flat_test
            model = build_mlp(spec, train[0].shape[1], depth, args.width, info["n_classes"], seed)
        else:
            train, test = img_train, img_test
            model = build_cnn(spec, train[0].shape[1:], args.width, info["n_classes"], seed)
        tb = ru.tensorboard_callback(args, group, spec.replace(":", "_"), f"seed{seed}")
        record = ru.train_classifier(model, train, test, args, seed, callbacks=[tb])
        record["seed"] = seed
        record["radii"] = radii(spec, depth if arch == "mlp" else 3)
        record["robustness"] = ru.robustness_tables(model, test, args)
        runs.setdefault(group, {}).setdefault(spec, []).append(record)
        if store:
            metrics = {k: v for k, v in record.items() if k not in ("history", "seed", "radii", "robustness")}
            store.save(
                setting,
                spec,
                seed,
                metrics=metrics,
                curves=record["history"],
                wall_time_s=time.perf_counter() - started,
                extra={
                    "dataset": args.dataset,
                    "architecture": (
                        f"MLP {depth}x{args.width}"
                        if arch == "mlp"
                        else f"CNN conv16-pool-conv32-pool-dense{args.width}"
                    ),
                    "epochs": args.epochs,
                    "params": int(model.count_params()),
                    "radii": record["radii"],
                    "robustness": record["robustness"],
                },
            )
        # Finished runs survive an interruption.
        write_json_atomic(out / "runs.partial.json", {"config": vars(args), "runs": runs})
        keras.backend.clear_session()

    for group, variants in runs.items():
        summary[group] = {}
        for spec, recs in variants.items():
            summary[group][spec] = {
                "test_error": stats.mean_std([r["test_error"] for r in recs]),
                "final_train_loss": stats.mean_std([r["final_train_loss"] for r in recs]),
                "mean_train_loss": stats.mean_std([r["mean_train_loss"] for r in recs]),
                "train_time_s": stats.mean_std([r["train_time_s"] for r in recs]),
                "robustness": ru.aggregate_robustness([r["robustness"] for r in recs]),
            }
        ru.plot_curves(
            {s: [r["history"]["loss"] for r in recs] for s, recs in variants.items()},
            out / f"loss_{group}.png",
            title=f"{group} on {args.dataset}: training loss (mean ± std)",
        )
        ru.plot_bars(
            {s: [r["test_error"] for r in recs] for s, recs in variants.items()},
            out / f"test_error_{group}.png",
            title=f"{group} on {args.dataset}: final test error",
        )
        ru.plot_robustness(
            {s: summary[group][s]["robustness"] for s in variants},
            out / f"robustness_{group}.png",
            title=f"{group} on {args.dataset}",
        )

    results = {
        "recipe": "bru_vs_relu",
        "paper": "Bhumbra 2018, arXiv:1804.11237",
        "config": vars(args),
        "data": info,
        "environment": ru.environment(),
        "runs": runs,
        "summary": summary,
        "claims": claims(summary),
    }
    write_json_atomic(out / "results.json", results)
    (out / "runs.partial.json").unlink(missing_ok=True)
    print(report(results))
    return 0


def report(results):
    """Markdown summary tables of a results dict."""
    lines = []
    for group, variants in results["summary"].items():
        lines.append(
            f"\n### {group} ({results['data']['dataset']}, {len(results['config']['seeds'])} seeds, "
            f"{results['config']['epochs']} epochs)\n"
        )
        rows = []
        for spec, s in variants.items():
            recs = results["runs"][group][spec]
            rob = s["robustness"]

            def at(attack, i=-1, rob=rob):
                return f"{100 * rob[attack]['mean'][i]:.1f}" if attack in rob else "-"

            rows.append(
                [
                    spec,
                    fmt_mean_std([r["test_error"] for r in recs], scale=100),
                    fmt_mean_std([r["final_train_loss"] for r in recs], digits=4),
                    fmt_mean_std([r["mean_train_loss"] for r in recs], digits=3),
                    at("gaussian_noise"),
                    at("fgsm"),
                    at("pgd"),
                ]
            )
        rob = next(iter(variants.values()))["robustness"]
        hdr = ["variant", "test error %", "final train loss", "mean train loss (AUC)"]
        for attack, name in (("gaussian_noise", "noise σ"), ("fgsm", "FGSM ε"), ("pgd", "PGD ε")):
            hdr.append(f"acc % {name}={rob[attack]['strengths'][-1]:g}" if attack in rob else f"acc % {name}")
        lines.append(table(hdr, rows))
    for group, c in results["claims"].items():
        lines.append(
            f"\n{group}: BRU trains faster (lower mean training loss): "
            f"{c['trains_faster']['held']}; "
            f"BRU best test error: {c['best_generalised']['held']} "
            f"(best {c['best_generalised']['best_variant']})."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
