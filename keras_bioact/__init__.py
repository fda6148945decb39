"""keras-bioact: biologically-inspired learnable activations for Keras 3.

Importing `keras_bioact` is instant: Keras and its backend are imported when first needed
(`keras_bioact.layers`, `keras_bioact.convert(...)`, ...). The serializable classes
(layers, initializers, constraints, optimizers, activations) are registered with Keras as
soon as Keras itself is imported, whatever the order of imports, so that
`keras.saving.load_model("model.keras")` finds them after a plain `import keras_bioact`.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types

__version__ = "0.1.0"

_SUBMODULES = (
    "activations",
    "analysis",
    "callbacks",
    "constraints",
    "conversion",
    "datasets",
    "initializers",
    "layers",
    "nin",
    "ops",
    "optimizers",
    "params",
    "reference",
    "robustness",
    "search",
    "seeding",
)
_ATTRIBUTES = {
    "BRU": "keras_bioact.layers",
    "GammaActivation": "keras_bioact.layers",
    "ConversionReport": "keras_bioact.conversion",
    "convert": "keras_bioact.conversion",
}
# Modules whose classes are `@keras.saving.register_keras_serializable`.
_SERIALIZABLE = ("activations", "constraints", "initializers", "layers", "optimizers")

__all__ = ["BRU", "ConversionReport", "GammaActivation", "convert", *_SUBMODULES]


def __getattr__(name):
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    # `keras_bioact.convert` is the function `keras_bioact.conversion.convert`. The deprecated
    # module of the same name (`keras_bioact/convert.py`, `from keras_bioact.convert import ...`)
    # must not replace it when imported: the import system sets the parent's attribute to the
    # submodule. Remove this class together with that module.
    def __setattr__(self, name, value):
        if name == "convert" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _register():
    for name in _SERIALIZABLE:
        importlib.import_module(f"{__name__}.{name}")


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Runs `_register` right after `keras` has been imported (once)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):
        return getattr(self._loader, name)


if "keras" in sys.modules:
    _register()
else:
    sys.meta_path.insert(0, _RegisterAfterKeras())
