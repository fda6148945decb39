"""A TensorFlow-free TensorBoard event-file writer.

`keras.callbacks.TensorBoard` and `tf.summary` need TensorFlow, even when the Keras backend is
JAX or PyTorch. This writer uses only the `tensorboard` package: the event/summary protocol
buffers from `tensorboard.compat.proto`, the record framing of
`tensorboard.summary.writer.record_writer.RecordWriter` and the CRC of its TensorFlow stub, and
the HParams plugin's protocol buffers. Files are written synchronously with plain Python file
I/O (no background thread, no `tf.io.gfile`), so TensorFlow is never imported.

Scalars, histograms and images are written in the classic `Summary.Value` form (`simple_value`,
`histo`, `image`), which TensorBoard's scalar, histogram and image dashboards and
`tensorboard.backend.event_processing.event_accumulator.EventAccumulator` all read.
"""

import os
import socket
import threading
import time

import numpy as np

__all__ = ["SummaryWriter"]

_UID = [0]
_UID_LOCK = threading.Lock()


def _next_uid():
    with _UID_LOCK:
        _UID[0] += 1
        return _UID[0]


class SummaryWriter:
    """Writes TensorBoard event files without TensorFlow.

    Each writer creates one new event file in `log_dir` (created if missing), named like
    TensorFlow's (`events.out.tfevents.<time>.<host>.<pid>.<uid><suffix>`), so TensorBoard treats
    `log_dir` as one run together with any other event file written there (for example by
    `keras.callbacks.TensorBoard`).

    Example:
    ```python
    with SummaryWriter("logs/run1/train") as w:
        w.scalar("loss", 0.5, step=0)
        w.histogram("weights", np.random.randn(100), step=0)
        w.image("curves", png_bytes, step=0)
    ```

    Args:
        log_dir: directory of the run.
        filename_suffix: appended to the event file name.
    """

    def __init__(self, log_dir, filename_suffix=""):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event_pb2 = event_pb2
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{_next_uid()}{filename_suffix}"
        )
        self.path = os.path.join(self.log_dir, name)
        self._lock = threading.Lock()
        self._writer = RecordWriter(open(self.path, "wb"))  # noqa: SIM115 - closed in close()
        self._write_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    # -- low level ---------------------------------------------------------------------------
    def _write_event(self, event):
        with self._lock:
            if self._writer is None:
                raise ValueError(f"SummaryWriter: {self.path} is closed.")
            self._writer.write(event.SerializeToString())

    def write_summary(self, summary, step):
        """Write a `summary_pb2.Summary` at `step`."""
        self._write_event(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self):
        with self._lock:
            if self._writer is not None:
                self._writer.flush()

    def close(self):
        with self._lock:
            if self._writer is not None:
                self._writer.flush()
                self._writer.close()
                self._writer = None

    @property
    def closed(self):
        return self._writer is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- summaries ---------------------------------------------------------------------------
    def scalar(self, tag, value, step):
        """Write one float scalar."""
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
        self.write_summary(summary, step)

    def scalars(self, values, step):
        """Write a `{tag: value}` dict of scalars as one event."""
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=t, simple_value=float(v)) for t, v in values.items()]
        )
        self.write_summary(summary, step)

    def write(self, step, scalars=None, histograms=None, bins=30):
        """Write `{tag: value}` scalars and `{tag: array}` histograms as one event (cheapest)."""
        from tensorboard.compat.proto import summary_pb2

        value = [summary_pb2.Summary.Value(tag=t, simple_value=float(v)) for t, v in (scalars or {}).items()]
        value += [
            summary_pb2.Summary.Value(tag=t, histo=histogram_proto(v, bins))
            for t, v in (histograms or {}).items()
        ]
        if value:
            self.write_summary(summary_pb2.Summary(value=value), step)

    def histogram(self, tag, values, step, bins=30):
        """Write a histogram of `values` (any shape; non-finite values are dropped)."""
        from tensorboard.compat.proto import summary_pb2

        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, histo=histogram_proto(values, bins))]
        )
        self.write_summary(summary, step)

    def image(self, tag, png, step, height=0, width=0):
        """Write an encoded image (`png`: PNG bytes, e.g. from `figure_to_png`)."""
        from tensorboard.compat.proto import summary_pb2

        if not height or not width:
            width, height = png_size(png)
        image = summary_pb2.Summary.Image(
            height=int(height), width=int(width), colorspace=4, encoded_image_string=png
        )
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])
        self.write_summary(summary, step)

    def text(self, tag, text, step):
        """Write a markdown text summary."""
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
        from tensorboard.plugins.text import metadata

        tensor = tensor_pb2.TensorProto(
            dtype=7,  # DT_STRING
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            string_val=[str(text).encode("utf-8")],
        )
        meta = metadata.create_summary_metadata(display_name=None, description=None)
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)]
        )
        self.write_summary(summary, step)

    def hparams_session_start(self, hparams, group_name="", start_time_secs=None):
        """Write the HParams plugin's session-start record (one per run directory).

        `hparams`: `{name: value}`; bool, int/float and str values are kept, NumPy scalars are
        converted, anything else is written as its `str`.
        """
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2

        info = plugin_data_pb2.SessionStartInfo(
            group_name=str(group_name),
            start_time_secs=time.time() if start_time_secs is None else float(start_time_secs),
        )
        for name, value in hparams.items():
            value = _hparam_value(value)
            if isinstance(value, bool):
                info.hparams[str(name)].bool_value = value
            elif isinstance(value, (int, float)):
                info.hparams[str(name)].number_value = value
            else:
                info.hparams[str(name)].string_value = value
        data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
        self._write_hparams(metadata.SESSION_START_INFO_TAG, data)

    def hparams_session_end(self, status="success", end_time_secs=None):
        """Write the HParams plugin's session-end record; `status` is one of
        "success", "failure", "running", "unknown"."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        codes = {
            "success": api_pb2.STATUS_SUCCESS,
            "failure": api_pb2.STATUS_FAILURE,
            "running": api_pb2.STATUS_RUNNING,
            "unknown": api_pb2.STATUS_UNKNOWN,
        }
        if status not in codes:
            raise ValueError(f"SummaryWriter: `status` must be one of {tuple(codes)}, got {status!r}.")
        info = plugin_data_pb2.SessionEndInfo(
            status=codes[status], end_time_secs=time.time() if end_time_secs is None else float(end_time_secs)
        )
        self._write_hparams(
            metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info)
        )

    def _write_hparams(self, tag, data):
        # Same record as tensorboard.plugins.hparams.summary_v2 writes, built from the
        # tensorboard package's own protos (that module's helpers may return TensorFlow's).
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.hparams import metadata

        value = summary_pb2.Summary.Value(
            tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
        )
        self.write_summary(summary_pb2.Summary(value=[value]), 0)


def _hparam_value(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "None"
    return str(value)


def histogram_proto(values, bins=30):
    """A `HistogramProto` of the finite entries of `values` with `bins` equal-width buckets."""
    from tensorboard.compat.proto import summary_pb2

    values = np.asarray(values, dtype="float64").reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return summary_pb2.HistogramProto(min=0.0, max=0.0, num=0, sum=0.0, sum_squares=0.0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        # One bucket holding every value; TensorBoard draws a spike at the value.
        counts, limits = [values.size], [hi]
    else:
        counts, edges = np.histogram(values, bins=int(bins), range=(lo, hi))
        limits = edges[1:].tolist()
    return summary_pb2.HistogramProto(
        min=lo,
        max=hi,
        num=float(values.size),
        sum=float(values.sum()),
        sum_squares=float(np.square(values).sum()),
        bucket_limit=limits,
        bucket=[float(c) for c in counts],
    )


def png_size(png):
    """(width, height) read from a PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("SummaryWriter.image: `png` must be PNG-encoded bytes.")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
