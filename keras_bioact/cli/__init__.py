"""The `bioact` command line.

Each module of this package (other than those starting with `_`) that defines
`register(subparsers)` contributes one or more subcommands; `register` adds its parser(s)
and sets `func` on them via `parser.set_defaults(func=...)`. `func(args)` returns the exit code.
"""

import argparse
import importlib
import pkgutil
import sys

from keras_bioact import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bioact",
        description="keras-bioact: search, evolve and inspect biologically-inspired activations.",
    )
    parser.add_argument("--version", action="version", version=f"keras-bioact {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
