"""TensorFlow segment checkpointing for `CheckpointedRNN` (private).

`tf.recompute_grad` per segment in a Python loop of segments did not save memory under XLA
(measured: more than plain `remat=True`), and it cannot be used inside a `tf.while_loop`. Here
the whole walk over segments is one `tf.custom_gradient`:

- forward: a `tf.while_loop` over the segments keeps only the states at segment boundaries (and
  each segment's outputs);
- backward: a reverse `tf.while_loop` re-runs one segment's forward from its saved boundary
  under a `tf.GradientTape` and pulls the incoming gradients through it, so only one segment's
  internals exist at a time, and the recomputation lives in another loop than the forward pass,
  where the compiler cannot merge it with the forward pass.

The cell's trainable variables are passed in as tensors and substituted inside the segment with
a `keras.StatelessScope`, so the gradient function needs no variable capture inside a loop body.
"""

import keras


def segment_scan(segment, xs, states, variables):
    """Checkpointed scan of `segment` over the leading axis of `xs`.

    Args:
        segment: `segment(x, states) -> (new_states, output)`, `x = xs[k]`, states a list of
            tensors; it may read `variables` (and only those trainable variables).
        xs: tensor `(num_segments, ...)`.
        states: list of initial state tensors.
        variables: the `keras.Variable`s `segment` reads that need gradients.

    Returns:
        `(final_states, outputs)`, `outputs` stacked over segments.
    """
    import tensorflow as tf

    num_states = len(states)
    num_segments = int(xs.shape[0])

    def run_segment(x, seg_states, values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            new_states, output = segment(x, list(seg_states))
        return [tf.convert_to_tensor(s) for s in new_states], tf.convert_to_tensor(output)

    @tf.custom_gradient
    def scan(xs, *flat):
        # stop_gradient: an enclosing tape must not record (and keep) the forward pass' internals.
        xs_fwd = tf.stop_gradient(xs)
        init = [tf.stop_gradient(s) for s in flat[:num_states]]
        values = list(flat[num_states:])
        values_fwd = [tf.stop_gradient(v) for v in values]
        # The first segment runs outside the loop: it gives the outputs' shapes.
        first_states, first_out = run_segment(xs_fwd[0], init, values_fwd)
        bounds = [
            tf.TensorArray(s.dtype, size=num_segments, element_shape=s.shape).write(0, s) for s in init
        ]
        outs = tf.TensorArray(first_out.dtype, size=num_segments, element_shape=first_out.shape)
        outs = outs.write(0, first_out)

        def body(k, carry, bounds, outs):
            bounds = [b.write(k, s) for b, s in zip(bounds, carry, strict=True)]
            new_states, output = run_segment(xs_fwd[k], carry, values_fwd)
            new_states = [tf.ensure_shape(s, t.shape) for s, t in zip(new_states, init, strict=True)]
            return k + 1, new_states, bounds, outs.write(k, tf.ensure_shape(output, first_out.shape))

        _, final, bounds, outs = tf.while_loop(
            lambda k, *_: k < num_segments,
            body,
            (tf.constant(1), first_states, bounds, outs),
            maximum_iterations=max(num_segments - 1, 1),
        )
        bounds = [b.stack() for b in bounds]
        outputs = outs.stack()

        def grad(*dys):
            d_final = [_zeros_if_none(d, s) for d, s in zip(dys[:num_states], final, strict=True)]
            d_outputs = _zeros_if_none(dys[num_states], outputs)

            def back(k, d_carry, d_values, d_xs):
                x = xs[k]
                seg_states = [b[k] for b in bounds]
                local = [tf.identity(v) for v in values]  # a tensor of this loop body, to watch
                with tf.GradientTape() as tape:
                    tape.watch([x, *seg_states, *local])
                    new_states, output = run_segment(x, seg_states, local)
                grads = tape.gradient(
                    [*new_states, output],
                    [x, *seg_states, *local],
                    output_gradients=[*d_carry, d_outputs[k]],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
                d_states = grads[1 : 1 + num_states]
                d_carry = [tf.ensure_shape(g, s.shape) for g, s in zip(d_states, init, strict=True)]
                d_values = [a + b for a, b in zip(d_values, grads[1 + num_states :], strict=True)]
                return k - 1, d_carry, d_values, d_xs.write(k, grads[0])

            d_xs = tf.TensorArray(xs.dtype, size=num_segments, element_shape=xs.shape[1:])
            _, d_init, d_values, d_xs = tf.while_loop(
                lambda k, *_: k >= 0,
                back,
                (tf.constant(num_segments - 1), d_final, [tf.zeros_like(v) for v in values], d_xs),
                maximum_iterations=num_segments,
            )
            return (d_xs.stack(), *d_init, *d_values)

        return (*final, outputs), grad

    values = [tf.convert_to_tensor(v.value) for v in variables]
    result = scan(xs, *states, *values)
    return list(result[:num_states]), result[num_states]


def _zeros_if_none(d, like):
    import tensorflow as tf

    return tf.zeros_like(like) if d is None else d

