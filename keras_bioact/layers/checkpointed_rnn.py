import keras
from keras import ops

# The backend recurrence used by keras.layers.RNN itself (not re-exported publicly in Keras 3).
from keras.src.backend import rnn as backend_rnn


@keras.saving.register_keras_serializable(package="keras_bioact")
class CheckpointedRNN(keras.layers.RNN):
    """`keras.layers.RNN` with segment-wise gradient checkpointing through time.

    The sequence is cut into segments of `segment_length` steps; each segment's recurrence
    runs under `keras.remat` (`jax.checkpoint` / `tf.recompute_grad` /
    `torch.utils.checkpoint`), so backpropagation keeps only the states at segment
    boundaries plus the internals of one segment while it is recomputed, instead of the
    internals of every step. With `T` steps and `L = segment_length` the kept activations drop
    from O(T) to O(T / L + L) steps' worth (L near sqrt(T) is a good choice, e.g. 28 for 784),
    at the price of a second forward pass in the backward pass. Outputs and gradients are the
    same as `keras.layers.RNN`'s.

    Built for `ANRUCell`, whose per-step controller state `(batch, units, controller_units)`
    makes plain BPTT at psMNIST scale need ~20 GiB, but it works with any cell. Note: the
    saving is what the scheme allows; the compiler decides the actual peak. In
    `benchmarks/anru_memory.py` (JAX, CPU) it matched `ANRUCell(remat=True)` at 98 steps and did
    not stay under 6 GiB at 784 steps, so measure before relying on it.
    All `keras.layers.RNN` arguments work (`return_sequences`,
    `return_state`, `stateful`, `go_backwards`, `zero_output_for_mask`); with a mask, or when
    the sequence is not longer than one segment, it runs the plain (unsegmented) loop.

    Args:
        cell: an RNN cell (e.g. `ANRUCell(400)`).
        segment_length: steps per checkpointed segment, >= 1 (default 28).
        **kwargs: the arguments of `keras.layers.RNN` (`unroll` is not supported).
    """

    def __init__(self, cell, segment_length=28, **kwargs):
        if isinstance(segment_length, bool) or not isinstance(segment_length, int) or segment_length < 1:
            raise ValueError(
                f"CheckpointedRNN: `segment_length` must be a positive integer, got {segment_length!r}."
            )
        if kwargs.get("unroll"):
            raise ValueError("CheckpointedRNN: `unroll=True` is not supported; use keras.layers.RNN.")
        super().__init__(cell, **kwargs)
        self.segment_length = segment_length

    def inner_loop(self, sequences, initial_state, mask, training=False):
        steps = sequences.shape[1]
        if mask is not None or steps is None or steps <= self.segment_length:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell_kwargs = {}
        if isinstance(self.cell, keras.layers.Layer) and self.cell._call_has_training_arg:
            cell_kwargs["training"] = training
        stateful_torch = keras.backend.backend() == "torch" and self.stateful

        def step(inputs, states):
            if stateful_torch:
                states = [ops.copy(s) for s in states]
            output, new_states = self.cell(inputs, states, **cell_kwargs)
            if not isinstance(new_states, (list, tuple)):
                new_states = [new_states]
            return output, list(new_states)

        initial_state = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        num_states = len(initial_state)
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
        return_all = self.return_sequences

        def segment(seq, *states):
            last, outputs, new_states = backend_rnn(
                step,
                seq,
                list(states),
                go_backwards=False,
                mask=None,
                unroll=False,
                input_length=seq.shape[1],
                zero_output_for_mask=self.zero_output_for_mask,
                return_all_outputs=return_all,
            )
            return (last, outputs, *new_states) if return_all else (last, *new_states)

        run = keras.remat(segment)
        states = initial_state
        pieces = []
        last = None
        for begin in range(0, steps, self.segment_length):
            result = run(sequences[:, begin : begin + self.segment_length], *states)
            last = result[0]
            if return_all:
                pieces.append(result[1])
            states = list(result[-num_states:])
        outputs = ops.concatenate(pieces, axis=1) if return_all else ops.expand_dims(last, 1)
        return last, outputs, states

    def get_config(self):
        config = super().get_config()
        config["segment_length"] = self.segment_length
        return config
