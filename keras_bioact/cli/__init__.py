"""The `bioact` command line.

Each module of this package (other than those starting with `_`) that defines
`register(subparsers)` contributes one or more subcommands; `register` adds its parser(s)
and sets `func` on them via `parser.set_defaults(func=...)`. `func(args)` returns the exit code.
"""

import argparse
import importlib
import json
import os
import pkgutil
import sys
import warnings

from keras_bioact import __version__

BACKENDS = ("jax", "tensorflow", "torch")
BACKEND_HELP = """Keras backend: --backend if given (it sets KERAS_BACKEND for the command and its
worker processes), else the KERAS_BACKEND environment variable if set, else "backend" in
$KERAS_HOME/keras.json (default ~/.keras/keras.json), else tensorflow (Keras' default). Nothing
imports Keras or a backend before a command needs it."""


def keras_backend():
    """`(backend, how it was chosen)`, without importing Keras (Keras' own order of precedence)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend(), "in use"
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], _CHOSEN.get("how", "KERAS_BACKEND")
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path) as f:
            backend = json.load(f).get("backend")
        if isinstance(backend, str) and backend:
            return backend, path
    except (OSError, ValueError, AttributeError):
        pass
    return "tensorflow", "default"


_CHOSEN = {}  # {"how": "--backend"} once `main` set KERAS_BACKEND from the option


def backend_line():
    """The one line that `bioact search` and `bioact show` print first."""
    backend, how = keras_backend()
    return f"keras backend: {backend} (from {how}; choose with `bioact --backend {{{','.join(BACKENDS)}}}`)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bioact",
        description="keras-bioact: search, evolve and inspect biologically-inspired activations.",
        epilog=BACKEND_HELP + "\n\nNow: " + backend_line(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keras-bioact {__version__}")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend of this command and its worker processes (sets KERAS_BACKEND; see below)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def _format_warning(message, category, filename, lineno, line=None, _default=warnings.formatwarning):
    """keras-bioact's own warnings (a deprecated spec key, ...) as one line, without the source
    line that Python's format adds; other warnings as Python formats them."""
    if category.__module__.startswith("keras_bioact"):
        return f"bioact: warning: {message}\n"
    return _default(message, category, filename, lineno, line)


def main(argv=None):
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.backend:
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
            print(f"bioact: error: --backend {args.backend}: Keras is already in use with another backend "
                  f"({keras_backend()[0]}) in this process", file=sys.stderr)  # fmt: skip
            return 2
        os.environ["KERAS_BACKEND"] = args.backend  # before Keras is imported; workers inherit it
        _CHOSEN["how"] = "--backend"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        print(f"bioact: {e or 'interrupted'}", file=sys.stderr)  # a search says how to continue
        return 130


if __name__ == "__main__":
    sys.exit(main())
