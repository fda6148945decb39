"""`bioact inspect MODEL.keras --out DIR`: the ActivationInspector figures of a saved model as PNG files."""

import json
import os
import sys


def register(subparsers):
    parser = subparsers.add_parser(
        "inspect",
        help="draw the learned activations of a saved model (PNG files)",
        description=(
            "Write, for every keras-bioact layer of a saved .keras model, the figures that "
            "keras_bioact.callbacks.ActivationInspector sends to TensorBoard: the per-neuron "
            "activation curves with reference functions (<layer>_curves.png), histograms of the "
            "activation parameters (<layer>_parameters.png), the surface g(a, b) of two-argument "
            "units (<layer>_surface.png, with its XOR score) and the n_t/s_t trajectories of "
            "adaptive RNN cells on a probe batch (<layer>_trajectories.png); plus summary.json."
        ),
    )
    parser.add_argument("model", help="path of a saved .keras model")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument(
        "--input-range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LOW", "HIGH"),
        help="x range of the activation curves (default -4 4)",
    )  # fmt: skip
    parser.add_argument("--num-points", type=int, default=161, help="grid points of the curves (default 161)")
    parser.add_argument(
        "--max-lines",
        type=int,
        default=64,
        help="neurons drawn as lines up to this many, else bands (default 64)",
    )
    parser.add_argument(
        "--probe", default=None,
        help="a .npy file of model inputs; its first --probe-size samples drive the RNN trajectories "
        "(default: a standard-normal probe of the RNN's input shape)",
    )  # fmt: skip
    parser.add_argument("--probe-size", type=int, default=8, help="probe sequences (default 8)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of the PNG files (default 100)")
    parser.set_defaults(func=run)


def run(args):
    import numpy as np

    if not os.path.isfile(args.model):
        print(f"bioact inspect: no such model file: {args.model}", file=sys.stderr)
        return 2
    low, high = args.input_range
    if not low < high:
        print(f"bioact inspect: --input-range needs LOW < HIGH, got {low} {high}", file=sys.stderr)
        return 2
    if args.num_points < 2 or args.max_lines < 1 or args.probe_size < 1 or args.dpi < 10:
        print(
            "bioact inspect: --num-points must be >= 2, --max-lines and --probe-size >= 1, --dpi >= 10",
            file=sys.stderr,
        )
        return 2
    import keras

    import keras_bioact  # noqa: F401  (registers the serializable layers)
    from keras_bioact._io import atomic_write
    from keras_bioact.callbacks import figures, inspection
    from keras_bioact.callbacks.activation_inspector import DEFAULT_REFERENCES, xor_score_of

    try:
        model = keras.saving.load_model(args.model)
    except Exception as exc:  # a corrupt file or an unknown custom object
        print(f"bioact inspect: cannot load {args.model}: {exc}", file=sys.stderr)
        return 2
    layers = inspection.find_layers(model)
    if not layers:
        print(
            f"bioact inspect: warning: {args.model} has no keras-bioact layers; nothing to draw.",
            file=sys.stderr,
        )
        return 1
    probe_data = np.load(args.probe) if args.probe else None
    os.makedirs(args.out, exist_ok=True)
    grid = np.linspace(low, high, args.num_points)
    summary = {"model": os.path.abspath(args.model), "layers": []}
    print(f"{'layer':<32} {'kind':<12} {'parameter':<10} {'mean':>9} {'std':>9} {'min':>9} {'max':>9}")
    for item in layers:
        stem = item.tag.replace("/", "__")
        entry = {"layer": item.tag, "kind": item.kind, "class": type(item.layer).__name__, "files": []}
        values = item.parameter_values()
        stats = item.parameter_stats(values)
        entry["stats"] = stats
        for name in values:
            if f"{name}/mean" in stats:
                print(
                    f"{item.tag:<32} {item.kind:<12} {name:<10} {stats[name + '/mean']:>9.4f} "
                    f"{stats[name + '/std']:>9.4f} {stats[name + '/min']:>9.4f} {stats[name + '/max']:>9.4f}"
                )

        def save(suffix, png, entry=entry, stem=stem):
            path = atomic_write(os.path.join(args.out, f"{stem}_{suffix}.png"), png)
            entry["files"].append(os.path.basename(path))

        if item.has_curves():
            canvas = figures.CurveCanvas(
                grid,
                item.curve_title(),
                args.max_lines,
                DEFAULT_REFERENCES if item.kind != "inner_curve" else (),
                (4.0, 3.0),
                args.dpi,
            )
            save("curves", canvas.render(item.curves(grid, values)))
        if values and item.kind in ("gamma", "bru", "parameters"):
            save("parameters", figures.parameters_png(values, item.tag, dpi=args.dpi))
        if item.kind == "surface":
            a, b, g = item.surface()
            score = xor_score_of(item.layer, a, b, g)
            entry["xor_score"] = score
            title = f"{item.tag}: g(a, b)" + ("" if score is None else f", xor score {score:.2f}")
            save("surface", figures.surface_png(a, b, g, title, dpi=args.dpi))
        if item.has_trajectories:
            probe = inspection.probe_for(model, item, probe_data, args.probe_size)
            traj = item.trajectories(probe) if probe is not None else None
            if traj is not None:
                n_t, s_t = traj
                entry["trajectories"] = {
                    "n_t_mean": float(n_t.mean()),
                    "s_t_mean": float(s_t.mean()),
                    "steps": int(n_t.shape[1]),
                }
                save(
                    "trajectories",
                    figures.trajectories_png(n_t[0], s_t[0], f"{item.tag}: n_t, s_t", dpi=args.dpi),
                )
        summary["layers"].append(entry)
    atomic_write(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=2))
    files = sum(len(e["files"]) for e in summary["layers"])
    print(f"wrote {files} figure(s) and summary.json to {args.out}")
    return 0
