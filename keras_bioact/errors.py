"""The one exception base class of keras-bioact.

Every error that keras-bioact raises for input it refuses (a search spec, a storage URL or file,
a checkpoint, a search space, a data set) is a `BioactError`, itself a `ValueError`, so that
`except ValueError` keeps working. The `bioact` commands report a `BioactError` as
`bioact: error: <message>` with exit code 2 and no traceback. Each subclass stays importable
from the module that raises it:

* `keras_bioact.search.SpecError` (a spec: names the file and the dotted key);
* `keras_bioact.search.StorageError` (an Optuna storage URL or file);
* `keras_bioact.search.evolution.CheckpointError` (an evolution checkpoint, or a resume with
  other settings);
* `keras_bioact.families.SpaceError` (a search space; also `keras_bioact.search.SpaceError`);
* `keras_bioact.datasets.DatasetNotFoundError` (a data set that is not installed; also a
  `FileNotFoundError`).
"""

__all__ = ["BioactError"]


class BioactError(ValueError):
    """Input that keras-bioact refuses; the message says what and where, and the legal range."""
