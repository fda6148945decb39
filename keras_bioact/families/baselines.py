"""The baseline families: Keras built-in activations (`keras.layers.Activation(name)`)."""

from keras_bioact import reference
from keras_bioact.families import Family, register_family

__all__ = ["BASELINES", "NUMPY"]

BASELINES = ("relu", "elu", "gelu", "swish", "tanh", "sigmoid")
# float64 NumPy versions of the Keras built-ins (keras.activations.<name>, default arguments).
NUMPY = {name: reference.activation(name) for name in BASELINES}


def _layer(name):
    def layer(activation, index=0, name_=None, channel_axes=None):
        import keras

        return keras.layers.Activation(name, name=name_)

    return layer


for _name, _fn in NUMPY.items():
    register_family(
        Family(
            name=_name,
            reference=_fn,
            baseline=True,
            description=f"Keras built-in activation {_name!r}",
            layer=_layer(_name),
        )
    )
