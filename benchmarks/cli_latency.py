"""How fast the command line answers: `bioact --help`, every sub-command's `--help` and a
bad-spec error, next to `optuna --help`, measured in the same run (wall seconds, best and
median of `--repeats`).

    python benchmarks/cli_latency.py --repeats 5
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def wall(cmd, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bindir = os.path.dirname(sys.executable)
    bioact = shutil.which("bioact", path=bindir) or "bioact"
    optuna = shutil.which("optuna", path=bindir) or "optuna"
    bad = os.path.join(tempfile.mkdtemp(), "bad.toml")
    with open(bad, "w") as f:
        f.write('[optuna]\nstudy = "x"\n[budget]\nepoch = 3\n')
    rows = [
        ("optuna --help", [optuna, "--help"]),
        ("bioact --help", [bioact, "--help"]),
        ("bioact search --help", [bioact, "search", "--help"]),
        ("bioact evolve --help", [bioact, "evolve", "--help"]),
        ("bioact show --help", [bioact, "show", "--help"]),
        ("bioact inspect --help", [bioact, "inspect", "--help"]),
        ("bioact search bad.toml (spec error)", [bioact, "search", bad]),
    ]
    backend = os.environ.get("KERAS_BACKEND", "-")
    print(f"repeats={args.repeats}, KERAS_BACKEND={backend}\n")
    print("| command | best (s) | median (s) |")
    print("|---|---|---|")
    for name, cmd in rows:
        best, median = wall(cmd, args.repeats)
        print(f"| `{name}` | {best:.2f} | {median:.2f} |")


if __name__ == "__main__":
    main()
