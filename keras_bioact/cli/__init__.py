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

BACKEND_HELP = """Keras backend: the KERAS_BACKEND environment variable if set, else "backend" in
$KERAS_HOME/keras.json (default ~/.keras/keras.json), else tensorflow (Keras' default). Nothing
imports Keras or a backend before a command needs it."""


def keras_backend():
    """`(backend, how it was chosen)`, without importing Keras (Keras' own order of precedence)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend(), "in use"
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
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


def backend_line():
    backend, how = keras_backend()
    return f"keras backend: {backend} ({how}; see `bioact --help`)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bioact",
        description="keras-bioact: search, evolve and inspect biologically-inspired activations.",
        epilog=BACKEND_HELP + "\n\n" + backend_line(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        print(f"bioact: {e or 'interrupted'}", file=sys.stderr)  # a search says how to continue
        return 130


if __name__ == "__main__":
    sys.exit(main())
