"""Running an evolution spec (`[evolution]` table): the EvoTorch engine of `bioact search`.

The model comes from the same builder as the Optuna engine's (`[model]`: a template built with
`[evolution.activation]`, or a saved `.keras` model). Its outer weights are trained once by
gradient (`[budget]`: epochs, batch size, learning rate; the evolved parameters held fixed),
then `keras_bioact.search.evolution.evolve` evolves `evolution.target` on the validation split
(carved out of the training split, as for Optuna). When the run is complete the best solution
is scored once on the test split, and validation and test are reported side by side; then the
verdict (`keras_bioact.search.evolution.verdict`) trains the evolved activation and the best
baseline network with the same fresh seeds and compares them on the test split (`verdict.json`,
`summary.json`'s `verdict`, `result.verdict`).

The baselines (`evolution.baselines`, default relu, gelu, swish) are the same template built with
each baseline family, from the same seed, trained under the same `[budget]` and scored on the
validation split with the evolution's metric: `baselines.json` in the output folder (written as
soon as they are trained, read back on resume, so a resumed run does not retrain them),
`EvolutionResult.baseline_scores` and the summary's `baseline_scores`.

`evolution.start = "model"` starts the search from a saved model's activation parameters: plain
Keras activations (a trained ReLU network, say) are first converted to the target's family with
`keras_bioact.convert` (calibrated on training samples to imitate them); the search
distribution's centre is the converted (or saved) parameters.
"""

from __future__ import annotations

import json
import os

__all__ = ["run_evolution"]


BASELINES_NAME = "baselines.json"


def start_model(spec, train, n_classes, activation=None):
    """The network evolution starts from (before `pretrain`): the template built with
    `activation` (default `evolution.activation`) from `budget.seed`, or the saved model
    (`model.path`), its plain activations converted to the target's family when
    `evolution.start = "model"` and it has no parameters of the target."""
    import keras

    from keras_bioact.search.activation import Activation
    from keras_bioact.search.models import model_builder
    from keras_bioact.seeding import set_random_seed

    ev = spec.evolution
    if spec.model_path:
        model = keras.saving.load_model(spec.model_path, compile=False, safe_mode=True)
        return _converted(model, ev, train) if ev.get("start") == "model" else model
    set_random_seed(int(spec.budget.seed))  # the model's initial weights, as for a trial
    build = model_builder(spec, train[0].shape[1:], n_classes)
    return build(Activation(activation or ev["activation"]))


def _converted(model, ev, train):
    """`model` as saved if it has activation parameters of the target, else converted to the
    target's family by `keras_bioact.convert` (calibrated on up to 256 training samples)."""
    from keras_bioact.conversion import convert
    from keras_bioact.search.evolution.fitness import select_parameters

    try:
        select_parameters(model, ev["target"], ev["layers"])
        return model
    except ValueError:
        pass
    probe = train[0][:256]
    return convert(model, family=ev["activation"]["family"], probe_data=probe)


def _fit(model, train, val, budget, progress=False):
    """`[budget]`'s gradient training of `model`: Adam, sparse cross-entropy."""
    import keras

    from keras_bioact.search.models import ends_with_softmax

    model.compile(
        optimizer=keras.optimizers.Adam(budget.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_with_softmax(model)),
        metrics=["accuracy"],
    )
    model.fit(
        train[0],
        train[1],
        validation_data=val,
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        verbose=2 if progress else 0,
    )


def pretrain(model, train, val, spec, progress=False):
    """Train the outer weights once by gradient, the evolved activation parameters held fixed."""
    from keras_bioact.search.evolution.fitness import select_parameters

    budget, ev = spec.budget, spec.evolution
    if budget.epochs <= 0:
        return
    held = select_parameters(model, ev["target"], ev["layers"])
    flags = [p.variable.trainable for p in held]
    for p in held:
        p.variable.trainable = False
    try:
        _fit(model, train, val, budget, progress)
    finally:
        for p, flag in zip(held, flags, strict=True):
            p.variable.trainable = flag


def validation_score(model, val, ev, batch_size=512):
    """`model`'s score on `val` with the evolution's metric (`evolution.metric`, in its own units,
    as the fitness)."""
    import numpy as np
    from keras import ops

    from keras_bioact.search.evolution.fitness import METRICS
    from keras_bioact.search.models import ends_with_softmax

    from_logits = ev.get("from_logits")
    from_logits = (not ends_with_softmax(model)) if from_logits is None else bool(from_logits)
    out = ops.convert_to_tensor(model.predict(val[0], batch_size=batch_size, verbose=0))
    per_sample = METRICS[ev["metric"]][0](ops.convert_to_tensor(val[1]), out, from_logits)
    return float(np.mean(ops.convert_to_numpy(per_sample)))


def train_baselines(spec, train, val, n_classes, out_dir, resume=False, progress=False, log=print):
    """`{name: validation score}` of `evolution.baselines`: each the template built with that
    family from `budget.seed`, trained under `[budget]` (as the start network is) and scored with
    `validation_score`. The scores are kept in `out_dir/baselines.json` as each is done; on
    `resume` the ones stored there are not trained again."""
    from keras_bioact._io import atomic_write

    ev = spec.evolution
    names = list(ev.get("baselines") or [])
    path = os.path.join(out_dir, BASELINES_NAME)
    stored = _read_baselines(path, ev["metric"]) if resume else {}
    scores = {n: stored[n] for n in names if n in stored}
    for name in names:
        if name in scores:
            continue
        log(f"training baseline {name} ({spec.budget.epochs} epoch(s)) ...")
        model = start_model(spec, train, n_classes, activation={"family": name})
        if spec.budget.epochs > 0:
            _fit(model, train, val, spec.budget, progress)
        scores[name] = validation_score(model, val, ev)
        record = {"metric": ev["metric"], "split": "validation", "scores": scores}
        atomic_write(path, json.dumps(record, indent=2))
    return scores


def _read_baselines(path, metric):
    """The scores of `baselines.json` (data: numbers by family name), or {} if absent, of
    another metric, or not of that form."""
    import math

    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    scores = record.get("scores") if isinstance(record, dict) and record.get("metric") == metric else None
    if not isinstance(scores, dict):
        return {}
    return {
        k: float(v)
        for k, v in scores.items()
        if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def accuracy(model, x, y, batch_size=512):
    import numpy as np
    from keras import ops

    logits = ops.convert_to_numpy(model.predict(x, batch_size=batch_size, verbose=0))
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def run_evolution(spec, resume=False, progress=True, stop_after=None, log=print, overwrite=False):
    """Run a validated evolution `SearchSpec` end to end; returns `(EvolutionResult, summary)`.

    `resume` continues the checkpoint in the output directory (an error if there is none);
    without `resume` or `overwrite`, an existing checkpoint is an error. Both are checked, and
    the checkpoint is read and verified, before any data is loaded or any model is trained.
    """
    if spec.evolution.get("target") == "expression":
        from keras_bioact.search.evolution.expressions import run_expression_evolution

        return run_expression_evolution(spec, resume=resume, progress=progress, log=log, overwrite=overwrite)
    import keras

    from keras_bioact._io import atomic_write
    from keras_bioact.search import data
    from keras_bioact.search.evolution._evolve import evolve
    from keras_bioact.search.evolution._resume import open_checkpoint
    from keras_bioact.search.evolution.checkpoint import CHECKPOINT_NAME
    from keras_bioact.search.evolution.result import summarise
    from keras_bioact.search.evolution.runtime import _model_to_bytes
    from keras_bioact.search.evolution.verdict import evolution_verdict
    from keras_bioact.search.spec.checks import output_dir
    from keras_bioact.search.verdict import write_json, write_tensorboard

    out_dir = os.path.abspath(spec.output["dir"])
    open_checkpoint(out_dir, os.path.join(out_dir, CHECKPOINT_NAME), resume, overwrite)
    output_dir(spec)
    splits = data.load_splits(spec)
    train, val, test = splits["train"], splits["val"], splits["test"]
    n_classes = data.shape_and_classes(splits)[1]
    start_path = os.path.join(out_dir, "start_model.keras")
    if resume and os.path.exists(start_path):
        model = keras.saving.load_model(start_path, compile=False, safe_mode=True)
    else:
        model = start_model(spec, train, n_classes)
        pretrain(model, train, val, spec, progress=progress)
        atomic_write(start_path, _model_to_bytes(model))
    start_acc = accuracy(model, test[0], test[1])
    baseline_scores = train_baselines(spec, train, val, n_classes, out_dir, resume, progress, log)
    ev = {k: v for k, v in spec.evolution.items() if k not in ("activation", "start", "baselines")}
    result = evolve(
        model,
        val,
        train_data=train if ev["mode"] != "frozen" else None,
        out_dir=out_dir,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        tensorboard=spec.output.get("tensorboard", True),
        stop_after=stop_after,
        **ev,
    )
    summary = {
        "spec": spec.source,
        "out_dir": out_dir,
        "generations": len(result.history),
        "optimised": f"{ev['metric']} on the validation split",
        "best_val_fitness": result.best_fitness,
        "baseline_scores": baseline_scores,
        "start_test_accuracy": start_acc,
    }
    result.baseline_scores = dict(baseline_scores)
    if len(result.history) >= ev["generations"]:
        if ev["mode"] != "frozen":
            # The fitness scored each candidate after its brief learning: score the best one the
            # same way (the same SGD from the same start), not on the un-learned start weights.
            summary["best_test_accuracy_before_learning"] = accuracy(model, test[0], test[1])
            model = learn_like_fitness(model, train, ev)
            summary["best_val_accuracy_after_learning"] = accuracy(model, val[0], val[1])
        summary["best_test_accuracy"] = accuracy(model, test[0], test[1])
        atomic_write(os.path.join(out_dir, "best_model.keras"), _model_to_bytes(model))
        verdict, reason = evolution_verdict(spec, result, splits, log=log if progress else None)
        result.verdict = verdict
        summary["verdict"] = verdict.to_dict() if verdict is not None else f"none: {reason}"
        if verdict is not None:
            write_json(verdict, out_dir)
            if spec.output.get("tensorboard", True):
                write_tensorboard(verdict, os.path.join(out_dir, "tensorboard"))
        atomic_write(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    log(json.dumps({k: v for k, v in summary.items() if k != "verdict"}, indent=2))
    log("best parameters (all in best.json and best_parameters.npz):")
    for path, value in result.best_parameters.items():
        log(f"  {path}: {summarise(value)}")
    log(protocol_line(spec))
    if result.verdict is not None:
        for line in result.verdict.lines():
            log(line)
    return result, summary


def learn_like_fitness(model, train, ev):
    """A copy of `model` (the start weights with the best solution written in) after the brief
    learning that the Baldwinian and Lamarckian fitness gives every candidate: the evolved
    parameters and the weights trained together, `train_epochs` of SGD in the same batches
    (`PopulationTrainer`, as in the search). Same start and data, so the same numbers."""
    import numpy as np

    from keras_bioact.params import ParameterView
    from keras_bioact.search.evolution.fitness import select_parameters
    from keras_bioact.search.evolution.runtime import _model_from_bytes, _model_to_bytes, learning_trainer
    from keras_bioact.search.models import ends_with_softmax

    model = _model_from_bytes(_model_to_bytes(model))
    params = select_parameters(model, ev["target"], ev.get("layers"))
    for p in params:
        p.variable.trainable = True
    from_logits = ev.get("from_logits")
    from_logits = (not ends_with_softmax(model)) if from_logits is None else bool(from_logits)
    trainer = learning_trainer(model, params, train, ev, from_logits)
    start = ParameterView(model, parameters=params).get_vector("natural")
    trainable, non_trainable = trainer.train(np.asarray(start)[None], return_weights=True).weights
    for v, value in zip(model.trainable_variables, trainable, strict=True):
        v.assign(value[0])
    for v, value in zip(model.non_trainable_variables, non_trainable, strict=True):
        v.assign(value[0])
    return model


def protocol_line(spec):
    """What was optimised and what the test score means (as `bioact show` says for Optuna)."""
    data = spec.data
    return (
        f"optimised: {spec.evolution['metric']} on the validation split "
        f"({data.get('validation_fraction', 0.2):.0%} of {data['name']}'s training split, seed "
        f"{data.get('seed', 0)}); best_test_accuracy: the held-out test split, scored once for the "
        "best solution (in the baldwinian and lamarckian modes after the same brief learning "
        "that its fitness measured)"
    )
