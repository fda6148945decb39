"""The model side of an evolutionary search (private, no EvoTorch/PyTorch import): `_Runtime`
(model, data, evaluator and, in the learning modes, a trainable private copy), model
(de)serialisation for Ray actors, the weights fingerprint checked on resume, and starting Ray.
"""

import hashlib
import os
import tempfile

import keras
import numpy as np
from keras import ops

from keras_bioact.params import ParameterView, activation_parameters
from keras_bioact.search.evolution.fitness import Genome, PopulationEvaluator, select_parameters


def _model_to_bytes(model):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _model_from_bytes(blob):
    import keras_bioact  # noqa: F401  (registers the custom layers)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(blob)
        return keras.saving.load_model(path, compile=False, safe_mode=True)


def _weights_fingerprint(model):
    """Hash of the model's weights other than its activation parameters (the fixed start)."""
    skip = {id(p.variable) for p in activation_parameters(model)}
    h = hashlib.sha256()
    for v in model.weights:
        if id(v) not in skip:
            h.update(np.ascontiguousarray(ops.convert_to_numpy(v.value)).tobytes())
    return h.hexdigest()


def learning_trainer(model, params, train, config, from_logits, **options):
    """The `PopulationTrainer` of the learning modes: the brief SGD (`train_epochs`,
    `train_batch_size`, `learning_rate`) every candidate gets before it is scored."""
    from keras_bioact.search.population import PopulationTrainer

    return PopulationTrainer(
        model,
        params,
        *train,
        loss="mse" if config["metric"] == "mse" else "crossentropy",
        from_logits=from_logits,
        learning_rate=config.get("learning_rate", 0.05),
        epochs=int(config.get("train_epochs", 1)),
        batch_size=int(config.get("train_batch_size", 32)),
        vectorized=config.get("vectorized", "auto"),
        **options,
    )


class _Runtime:
    """Model, data, evaluator and (for the learning modes) a trainable private copy."""

    def __init__(self, model, data, config):
        self.config = config
        self.mode = config["mode"]
        if self.mode != "frozen":
            # The learning modes train a private copy; the caller's model is never touched.
            model = _model_from_bytes(_model_to_bytes(model))
        params = select_parameters(model, config["target"], config.get("layers"))
        self.genome = Genome(ParameterView(model, parameters=params), config["granularity"])
        x_val, y_val = data["val"]
        self.evaluator = PopulationEvaluator(
            model,
            x_val,
            y_val,
            parameters=params,
            metric=config["metric"],
            from_logits=config.get("from_logits"),
            vectorized=config.get("vectorized", "auto") if self.mode == "frozen" else False,
            batch_size=config.get("eval_batch_size"),
        )
        self.model = model
        if self.mode != "frozen":
            self.train = data.get("train")
            if self.train is None:
                raise ValueError(f"evolve: mode {self.mode!r} needs `train_data`.")
            # Every selected activation parameter learns together with the weights.
            for p in params:
                p.variable.trainable = True
            self.trainer = learning_trainer(
                model,
                params,
                self.train,
                config,
                from_logits=self.evaluator.from_logits,
                val_data=data["val"],
                metric=self.evaluator.metric_fn,
                eval_batch_size=config.get("eval_batch_size"),
                population_chunk=config.get("population_chunk"),
                memory_budget=config.get("memory_budget"),
                jit_compile=config.get("jit_compile", "auto"),
            )
            self.evaluator.vectorized = False

    def evaluate(self, genes):
        natural = self.genome.natural(genes)
        if self.mode == "frozen":
            return self.evaluator.evaluate(natural), None
        result = self.trainer.train(natural)
        scores, learned = result.scores, result.learned
        scores = np.where(np.isfinite(scores), scores, -np.inf if self.evaluator.sense == "max" else np.inf)
        if self.mode == "lamarckian":
            return scores, self.genome.genes_from_natural(learned)
        return scores, None


def _ensure_ray(num_actors):
    """Start a local Ray with this interpreter's environment (backend, import path)."""
    import ray

    if ray.is_initialized():
        return
    import keras_bioact

    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_bioact.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=max(int(num_actors), 1),
        include_dashboard=False,
        log_to_driver=False,
        logging_level="error",
        runtime_env={"env_vars": {"KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": path}},
    )
