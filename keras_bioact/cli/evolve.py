"""`bioact evolve SPEC.toml`: neuroevolution of activation parameters with EvoTorch."""

import sys

HELP = """Evolve a model's activation parameters (per-neuron gamma n_i, s_i, BRU r, or the weights
of the shared inner MLP g) with EvoTorch (SNES, XNES, CMA-ES, PGPE, GA, Cosyne). The spec
(TOML) names the data, the model and the search; see search/evolve_*.toml. Every generation
writes a checkpoint, history.csv and TensorBoard scalars to [output] dir; --resume continues
an interrupted run from its checkpoint."""


def register(subparsers):
    parser = subparsers.add_parser("evolve", help="evolve activation parameters (EvoTorch)", description=HELP)
    parser.add_argument("spec", help="spec file (TOML), e.g. search/evolve_gamma.toml")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in the output dir"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start over although the output dir holds a checkpoint (default: refuse)",
    )
    parser.add_argument("--out", help="output directory (overrides [output] dir)")
    parser.add_argument("--algorithm", help="overrides [evolution] algorithm")
    parser.add_argument("--generations", type=int, help="overrides [evolution] generations")
    parser.add_argument("--popsize", type=int, help="overrides [evolution] popsize")
    parser.add_argument("--seed", type=int, help="overrides [evolution] seed")
    parser.add_argument("--num-actors", type=int, help="overrides [evolution] num_actors (Ray actors)")
    parser.add_argument("--mode", help="overrides [evolution] mode")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args):
    from keras_bioact.search.checkpoint import CheckpointError
    from keras_bioact.search.evolution_spec import SpecError, _check, load_spec, run_spec

    try:
        spec = load_spec(args.spec)
        for key, value in (
            ("algorithm", args.algorithm),
            ("generations", args.generations),
            ("popsize", args.popsize),
            ("seed", args.seed),
            ("num_actors", args.num_actors),
            ("mode", args.mode),
        ):
            if value is not None:
                _check("command line", "evolution", key, value)
                spec["evolution"][key] = value
        if args.out:
            spec["output"]["dir"] = args.out
        if args.resume and args.overwrite:
            raise SpecError("command line: --overwrite: excludes --resume")
        run_spec(spec, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    except (SpecError, CheckpointError) as error:
        print(f"bioact evolve: {error}", file=sys.stderr)
        return 2
    return 0
