"""Deprecated: `keras_bioact.convert` the module is now the package `keras_bioact.conversion`.

`from keras_bioact.convert import convert, ConversionReport` keeps working for one release, with
a `DeprecationWarning` at each name imported; use `keras_bioact.convert(...)` /
`keras_bioact.ConversionReport` or `from keras_bioact.conversion import ...`. The attribute
`keras_bioact.convert` stays the function (see `_Package` in `keras_bioact/__init__.py`).
"""

import warnings

__all__ = ["ConversionReport", "ConvertedActivation", "SUPPORTED_ACTIVATIONS", "convert"]  # noqa: F822


def __getattr__(name):
    if name in __all__:
        warnings.warn(
            f"`keras_bioact.convert.{name}` is deprecated and will be removed in the next release; "
            f"use `keras_bioact.conversion.{name}` (or `keras_bioact.{name}` for convert and "
            "ConversionReport).",
            DeprecationWarning,
            stacklevel=2,
        )
        from keras_bioact import conversion

        return getattr(conversion, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
