"""The convert rule of the learnable Swish family (`LearnableSwish`): from Keras `silu`/`swish` only."""

import numpy as np

from keras_bioact import reference
from keras_bioact.conversion.rules import ConvertRule, register_rule


def make(converter, spec, name, shared_axes, dtype):
    from keras_bioact.layers import LearnableSwish

    # Keras' silu (alias swish) is exactly x * sigmoid(x): beta = 1 under both inits.
    unit = LearnableSwish(
        beta_initializer=1.0, shared_axes=shared_axes, trainable=converter.trainable, name=name, dtype=dtype
    )
    return {"unit": unit, "recipe": None, "form": None, "correction": None, "use_adapter": False}


def deviation(record, probe):
    from keras import ops

    beta = np.unique(np.asarray(ops.convert_to_numpy(record["unit"].beta), dtype="float64").reshape(-1))
    summary = float(beta.min()) if beta.min() == beta.max() else f"{beta.min():.4g}..{beta.max():.4g}"
    return reference.swish(probe[:, None], beta[None, :]), {"beta": summary}


RULE = register_rule(
    "learnable_swish",
    ConvertRule(
        make=make, deviation=deviation, supports=lambda spec: spec.name == "silu", default_sharing="channel"
    ),
)
