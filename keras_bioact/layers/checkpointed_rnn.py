import keras
from keras import ops


def _batch_major(outputs, states, return_all):
    """`inner_loop`'s `(last_output, outputs, states)` from time-major outputs (every step's with
    `return_all`, else the last step's)."""
    if return_all:
        outputs = ops.transpose(outputs, (1, 0) + tuple(range(2, len(outputs.shape))))
        return outputs[:, -1], outputs, list(states)
    return outputs, ops.expand_dims(outputs, 1), list(states)


@keras.saving.register_keras_serializable(package="keras_bioact")
class CheckpointedRNN(keras.layers.RNN):
    """`keras.layers.RNN` with segment-wise gradient checkpointing through time.

    The sequence is cut into segments of `segment_length` steps; backpropagation keeps only
    the states at segment boundaries plus the internals of one segment while it is recomputed,
    instead of the internals of every step. With `T` steps and `L = segment_length` the kept
    activations drop from O(T) to O(T / L + L) steps' worth (L near sqrt(T) is a good choice,
    e.g. 28 for 784), at the price of a second forward pass in the backward pass. Outputs and
    gradients are the same as `keras.layers.RNN`'s. Per backend:

    - JAX: an outer `keras.ops.scan` over segments, each an inner scan under `keras.remat`
      (`jax.checkpoint`). The outer scan matters: with a Python loop of segments XLA kept every
      segment's internals alive at once.
    - TensorFlow: one `tf.custom_gradient` around a `tf.while_loop` over segments that keeps
      their boundary states; its gradient is a reverse `while_loop` that re-runs one segment
      under a `GradientTape` (`tf.recompute_grad` per segment, in a Python loop, saved nothing
      under XLA, and it does not work inside a `while_loop`). A segment's steps are unrolled.
    - PyTorch: a Python loop of segments, each under a reentrant `torch.utils.checkpoint`
      (the non-reentrant one of `keras.remat` kept every nested `keras.remat`'s inputs for
      every step). The weights' gradients reach their `.grad` (as `loss.backward()` and
      Keras' torch trainer use them); `torch.autograd.grad` cannot go through it.

    Built for `ANRUCell`, whose per-step controller state `(batch, units, controller_units)`
    makes plain BPTT at psMNIST scale need more than 18 GiB. Use it with
    `ANRUCell(remat=True)`, so that a recomputed segment keeps only its steps' states: at
    psMNIST scale (T = 784, 400 units, controller 50, batch 100, JAX, CPU) one training step
    then took 669 MiB above the built model, against 7,859 MiB for `ANRUCell(remat=True)` alone,
    in about the same time (`benchmarks/anru_memory.py`, see benchmarks/README.md). It works
    with any cell. All `keras.layers.RNN` arguments work (`return_sequences`,
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
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
        return_all = self.return_sequences
        length = self.segment_length
        time_major = ops.transpose(sequences, (1, 0) + tuple(range(2, len(sequences.shape))))

        def one_step(states, x_t):
            output, new_states = step(x_t, states)
            return new_states, output

        num_states = len(initial_state)

        def segment(seg, *states):
            # seg: (segment_length, batch, ...); one inner scan, recomputed in the backward pass.
            # Flat in and out: tf.recompute_grad does not keep nested structures.
            states, outputs = ops.scan(one_step, list(states), seg)
            return (*states, outputs if return_all else outputs[-1])

        remat_segment = keras.remat(segment)

        def run(states, seg):
            result = list(remat_segment(seg, *states))
            return result[:num_states], result[num_states]

        full = steps // length
        if keras.backend.backend() == "tensorflow":
            return self._tf_loop(step, time_major, initial_state, full, return_all)
        if keras.backend.backend() == "torch":
            return self._torch_loop(step, time_major, initial_state, return_all)
        head = ops.reshape(time_major[: full * length], (full, length) + tuple(ops.shape(time_major)[1:]))
        # The outer scan makes the backward pass walk the segments one at a time, so only one
        # segment's internals are alive at once (a Python loop lets the compiler keep them all).
        states, outputs = ops.scan(lambda c, seg: run(c, seg), initial_state, head)
        if return_all:
            outputs = ops.reshape(outputs, (full * length,) + tuple(ops.shape(outputs)[2:]))
        else:
            outputs = outputs[-1]
        if steps % length:
            states, tail = run(states, time_major[full * length :])
            outputs = ops.concatenate([outputs, tail], axis=0) if return_all else tail
        return _batch_major(outputs, states, return_all)

    def _tf_loop(self, step, time_major, states, full, return_all):
        """TensorFlow: the whole walk over segments is one `tf.custom_gradient` around a
        `tf.while_loop` (see `_tf_segments`); a segment's steps are unrolled."""
        from keras_bioact.layers import _tf_segments

        length = self.segment_length

        def segment(seg, states):
            outputs = []
            for t in range(seg.shape[0]):
                output, states = step(seg[t], states)
                outputs.append(output)
            return states, (ops.stack(outputs) if return_all else outputs[-1])

        variables = self.cell.trainable_variables
        head = ops.reshape(time_major[: full * length], (full, length) + tuple(ops.shape(time_major)[1:]))
        states, outputs = _tf_segments.segment_scan(segment, head, states, variables)
        if return_all:
            outputs = ops.reshape(outputs, (full * length,) + tuple(ops.shape(outputs)[2:]))
        else:
            outputs = outputs[-1]
        if time_major.shape[0] % length:
            tail = ops.expand_dims(time_major[full * length :], 0)
            states, last = _tf_segments.segment_scan(segment, tail, states, variables)
            outputs = ops.concatenate([outputs, last[0]], axis=0) if return_all else last[0]
        return _batch_major(outputs, states, return_all)

    def _torch_loop(self, step, time_major, states, return_all):
        """PyTorch: a Python loop of segments, each under a reentrant `torch.utils.checkpoint`:
        its forward pass runs without building a graph, so nothing of a segment is kept but its
        inputs (with the non-reentrant checkpoint of `keras.remat`, every nested
        `keras.remat` inside the cell kept its own inputs for every step). The backward pass
        re-runs the segment and accumulates the weights' gradients into their `.grad`, which is
        how Keras' torch trainer reads them (`torch.autograd.grad` cannot be used through it)."""
        return _torch_segments(self, step, time_major, states, return_all)

    def get_config(self):
        config = super().get_config()
        config["segment_length"] = self.segment_length
        return config


def _torch_segments(layer, step, time_major, states, return_all):
    import torch
    from torch.utils.checkpoint import checkpoint

    num_states, length = len(states), layer.segment_length
    # Passed in (unused) so that a segment's outputs require grad even when its inputs do not.
    params = [v.value for v in layer.cell.trainable_variables]

    def segment(seg, *flat):
        seg_states, outputs = list(flat[:num_states]), []
        for t in range(seg.shape[0]):
            output, seg_states = step(seg[t], seg_states)
            outputs.append(output)
        return (*seg_states, torch.stack(outputs) if return_all else outputs[-1])

    pieces = []
    for begin in range(0, time_major.shape[0], length):
        seg = time_major[begin : begin + length]
        if torch.is_grad_enabled():
            result = checkpoint(segment, seg, *states, *params, use_reentrant=True)
        else:
            result = segment(seg, *states)
        states = list(result[:num_states])
        if return_all or begin + length >= time_major.shape[0]:
            pieces.append(result[num_states])
    if return_all:
        outputs = torch.cat(pieces, dim=0).transpose(0, 1)
        return outputs[:, -1], outputs, states
    return pieces[-1], pieces[-1].unsqueeze(1), states
