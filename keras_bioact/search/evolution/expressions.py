"""Evolution of composed-activation expressions (`[evolution] target = "expression"`).

The encoding is fixed-size: four real genes in [0, 1] (schema, binary primitive, first and
second unary primitive), each decoded as the bin `floor(gene * n)` of its list in
`[space.composed]` (`keras_bioact.expressions.decode_genes`); genes of slots a schema does not
use are carried along unused, so a later mutation of the schema gene can bring them back. The
searcher is EvoTorch's `GeneticAlgorithm` (simulated binary crossover of the genes, Gaussian
mutation, elitist selection) on those genes: crossover mixes the slots of two parents'
expressions, mutation moves a gene to a neighbouring bin or farther. Mutation and crossover of
trees were not chosen because a fixed-size genome lets the engine's existing real-valued
operators (and their seeding) do the work.

Each candidate's fitness is the validation accuracy of the spec's model built with that
expression (`family = "composed"`) and trained for `budget.epochs` from the same initial
weights (`budget.seed`). Candidates with the same fingerprint
(`keras_bioact.expressions.fingerprint`: the same function) share one training: the first
one's score is reused, and `evaluations.csv` names the expression it duplicates.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time

import numpy as np

from keras_bioact import expressions
from keras_bioact.errors import BioactError

__all__ = ["ExpressionScorer", "run_expression_evolution"]

GENES = ("schema", "b", "u1", "u2")


class ExpressionScorer:
    """Validation accuracy of expressions, trained once per fingerprint.

    Args:
        build: `build(expression) -> keras.Model` (uncompiled).
        train, val: `(x, y)` splits.
        budget: the spec's `Budget` (epochs, batch size, learning rate, seed, jit_compile).
    """

    def __init__(self, build, train, val, budget):
        self.build, self.train, self.val, self.budget = build, train, val, budget
        self.scores = {}  # fingerprint -> (score, first expression)
        self.rows = []

    def __call__(self, expression, generation=0):
        fp = expressions.fingerprint(expression)
        duplicate_of = ""
        if fp in self.scores:
            score, duplicate_of = self.scores[fp]
            seconds = 0.0
        else:
            start = time.perf_counter()
            score = self._train(expression)
            seconds = time.perf_counter() - start
            self.scores[fp] = (score, expression)
        self.rows.append(
            {
                "generation": generation,
                "expression": expression,
                "fingerprint": fp,
                "val_accuracy": score,
                "duplicate_of": duplicate_of,
                "seconds": round(seconds, 3),
            }
        )
        return score

    def fit(self, expression):
        """The model of `expression`, trained as its fitness was measured."""
        import keras

        from keras_bioact.search.models import ends_with_softmax

        b = self.budget
        keras.utils.set_random_seed(int(b.seed))
        model = self.build(expression)
        model.compile(
            optimizer=keras.optimizers.Adam(b.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_with_softmax(model)),
            metrics=["accuracy"],
            jit_compile=b.jit_compile,
        )
        x, y = self.train
        if b.max_train is not None:
            x, y = x[: b.max_train], y[: b.max_train]
        model.fit(x, y, epochs=b.epochs, batch_size=b.batch_size, verbose=0)
        return model

    def _train(self, expression):
        model = self.fit(expression)
        logits = np.asarray(model.predict(self.val[0], batch_size=512, verbose=0))
        if not np.isfinite(logits).all():
            return 0.0
        return float(np.mean(np.argmax(logits, axis=-1) == self.val[1]))


def _problem(scorer, space, seed):
    import torch
    from evotorch import Problem

    class ExpressionProblem(Problem):
        generation = 0

        def _evaluate(self, solution):
            genes = solution.values.detach().cpu().numpy().astype("float64")
            expression = expressions.decode_genes(genes, space.schemas, space.unary, space.binary)
            solution.set_evals(scorer(expression, self.generation))

    return ExpressionProblem(
        "max",
        solution_length=len(GENES),
        initial_bounds=(0.0, 1.0),
        bounds=(0.0, 1.0),
        dtype=torch.float32,
        seed=int(seed),
    )


def run_expression_evolution(spec, resume=False, progress=True, log=print, overwrite=False):
    """Run an `[evolution] target = "expression"` spec; returns `(EvolutionResult, summary)`.
    Writes `evaluations.csv` (every candidate: generation, expression, fingerprint, validation
    accuracy, the expression it duplicates), `history.csv` and `summary.json` to `output.dir`.
    There is no checkpoint: `resume` is refused."""
    from keras_bioact._io import atomic_write
    from keras_bioact.search import data
    from keras_bioact.search.activation import Activation
    from keras_bioact.search.evolution.problem import make_searcher
    from keras_bioact.search.evolution.result import EvolutionResult
    from keras_bioact.search.models import model_builder

    ev = spec.evolution
    out_dir = os.path.abspath(spec.output["dir"])
    if resume:
        raise BioactError(
            "evolution.target: an expression evolution has no checkpoint to resume; run it again"
        )
    if os.path.exists(os.path.join(out_dir, "evaluations.csv")) and not overwrite:
        raise BioactError(f"output.dir: {out_dir} holds an earlier expression evolution; pass overwrite")
    os.makedirs(out_dir, exist_ok=True)
    space = spec.space.composed
    splits = data.load_splits(spec)
    train, val, test = splits["train"], splits["val"], splits["test"]
    build_model = model_builder(spec, train[0].shape[1:], data.shape_and_classes(splits)[1])
    sharing = space.sharing[0]

    def build(expression):
        return build_model(Activation({"family": "composed", "expression": expression, "sharing": sharing}))

    scorer = ExpressionScorer(build, train, val, spec.budget)
    problem = _problem(scorer, space, ev["seed"])
    options = dict(ev.get("algorithm_options") or {})
    options.setdefault("mutation_stdev", 0.15)
    searcher = make_searcher("ga", problem, int(ev["popsize"]), float(ev["stdev_init"]), [0.5] * 4, options)
    history = []
    best = (-math.inf, None, None)
    for generation in range(int(ev["generations"])):
        problem.generation = generation
        start = time.perf_counter()
        searcher.step()
        pop = searcher.population
        evals = pop.evals[:, 0].detach().cpu().numpy().astype("float64")
        values = pop.values.detach().cpu().numpy().astype("float64")
        i = int(np.argmax(evals))
        if evals[i] > best[0]:
            genes = values[i]
            best = (
                float(evals[i]),
                genes,
                expressions.decode_genes(genes, space.schemas, space.unary, space.binary),
            )
        history.append(
            {
                "generation": generation,
                "best": float(evals[i]),
                "mean": float(np.mean(evals)),
                "best_so_far": best[0],
                "functions_trained": len(scorer.scores),
                "evaluations": len(scorer.rows),
                "seconds": round(time.perf_counter() - start, 3),
            }
        )
        if progress:
            log(
                f"generation {generation}: best {evals[i]:.4f} ({best[2]}), "
                f"{len(scorer.scores)} functions trained"
            )
    _write_csv(os.path.join(out_dir, "evaluations.csv"), scorer.rows, atomic_write)
    _write_csv(os.path.join(out_dir, "history.csv"), history, atomic_write)
    model = scorer.fit(best[2])
    logits = np.asarray(model.predict(test[0], batch_size=512, verbose=0))
    summary = {
        "spec": spec.source,
        "out_dir": out_dir,
        "generations": len(history),
        "optimised": "accuracy on the validation split",
        "best_expression": best[2],
        "best_val_fitness": best[0],
        "functions_trained": len(scorer.scores),
        "evaluations": len(scorer.rows),
        "best_test_accuracy": float(np.mean(np.argmax(logits, axis=-1) == test[1])),
    }
    atomic_write(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    log(json.dumps(summary, indent=2))
    log(
        "optimised: validation accuracy of each expression's model after budget.epochs of training "
        "(the same initial weights); best_test_accuracy: the held-out test split, scored once for "
        "the best expression, trained the same way"
    )
    result = EvolutionResult(
        best_fitness=best[0],
        best_genes=np.asarray(best[1]),
        best_parameters={},
        history=history,
        config=dict(ev),
        out_dir=out_dir,
    )
    return result, summary


def _write_csv(path, rows, atomic_write):
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(path, buffer.getvalue())
