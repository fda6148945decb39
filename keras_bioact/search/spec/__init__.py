"""Search specifications (TOML): one reader and one schema for both engines.

```toml
[optuna]                      # the engine: an Optuna study (or [evolution]: EvoTorch)
study = "quickstart"
n_trials = 16
[optuna.sampler]
name = "tpe"

[data]
name = "digits"
validation_fraction = 0.2     # validation is carved out of the training split, seeded
[model]
template = "mlp"              # or path = "my_model.keras"
hidden = [32, 32]
[budget]
epochs = 6
[space]
families = ["relu", "gamma", "bru"]
```

Every key is declared once in `keras_bioact.search.spec.schema` (type, default, legal range);
`docs/specs.md` lists them. Every unknown key, out-of-range value or unknown name raises
`SpecError` naming the file and the dotted key, before anything is imported, loaded or
trained. Strings are never evaluated and a spec never imports code. `keras_bioact.search.preflight`
then reads the data and the saved model and tries the output folder, before anything is written.

Protocol: trials (and evolution's fitness) are scored on the validation split, carved out of
the data set's training split with `data.seed`. The search never sees the test split; when it
ends (and in `bioact show`), the best trial is scored once on the test split.

Modules: `schema` (every key, its type, default and legal range), `model` (the plain data:
`SearchSpec`, `Budget`, `SpecError`), `reader` (`load_spec`, `parse_spec`), `checks` (the checks
that go beyond one key). Nothing here imports Keras, Optuna, EvoTorch or a backend.
"""

from keras_bioact.search.spec.model import Budget, SearchSpec, SpecError
from keras_bioact.search.spec.reader import SpecDeprecationWarning, load_spec, parse_spec

__all__ = ["Budget", "SearchSpec", "SpecDeprecationWarning", "SpecError", "load_spec", "parse_spec"]
