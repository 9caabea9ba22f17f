"""Request builders for the serving-signature contract, and the contract itself re-exported.

The contract (signature keys, input/output aliases, dtypes, ranks, ``contract_violations``) lives
in ``tf_ccl4rec.serving_contract``, which the exporter and the serving side both import; it is
re-exported here so the server, the client and their users keep reading ``signatures.PREDICT`` etc.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tf_ccl4rec import features
from tf_ccl4rec.serving_contract import (
    CANDIDATES,
    CLASSES,
    CLICK_HISTORY,
    EMBEDDING,
    EXAMPLES,
    INPUTS,
    NONCLICK_HISTORY,
    OUTPUTS,
    PADDING,
    PREDICT,
    PROBABILITIES,
    RECOMMEND,
    SCORES,
    SERVING_DEFAULT,
    SIGNATURE_NAMES,
    USER_EMBEDDING,
    VIDEO_IDS,
    K,
    contract_violations,
    validate_export,
)

__all__ = [
    "SERVING_DEFAULT",
    "PREDICT",
    "RECOMMEND",
    "USER_EMBEDDING",
    "SIGNATURE_NAMES",
    "EXAMPLES",
    "CLICK_HISTORY",
    "NONCLICK_HISTORY",
    "CANDIDATES",
    "K",
    "SCORES",
    "CLASSES",
    "PROBABILITIES",
    "VIDEO_IDS",
    "EMBEDDING",
    "PADDING",
    "INPUTS",
    "OUTPUTS",
    "contract_violations",
    "validate_export",
    # request builders (this module)
    "pad_ids",
    "history_inputs",
    "predict_inputs",
    "recommend_inputs",
    "make_example",
    "fill_inputs",
    "make_predict_request",
    "make_classify_request",
    "set_model_spec",
]


def _as_id(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value).encode("utf-8")
    raise TypeError(f"video ids must be str, bytes or int, got {type(value).__name__}: {value!r}")


def pad_ids(rows: Sequence[Iterable], width: int | None = None):
    """Packs per-user id lists into a right-padded ``[B, N]`` string array.

    Args:
      rows: one iterable of raw video ids (str, bytes or int) per user.
      width: the padded width N; defaults to the longest row (0 when every row is empty).

    Returns:
      A numpy object array of bytes, ``PADDING`` where a row is shorter than ``width``.

    Raises:
      ValueError: if a row is longer than ``width``.
      TypeError: if an id is not a str, bytes or int.
    """
    import numpy as np

    if isinstance(rows, (str, bytes)):
        raise TypeError("rows must be a list of id lists, one per user, not a single string")
    encoded = [[_as_id(v) for v in row] for row in rows]
    longest = max((len(r) for r in encoded), default=0)
    width = longest if width is None else width
    if longest > width:
        raise ValueError(f"a row has {longest} ids, more than the padded width {width}")
    out = np.full((len(encoded), width), PADDING.encode(), dtype=object)
    for i, row in enumerate(encoded):
        out[i, : len(row)] = row
    return out


def _histories(click_histories, nonclick_histories):
    nonclick_histories = (
        [[] for _ in click_histories] if nonclick_histories is None else nonclick_histories
    )
    if len(nonclick_histories) != len(click_histories):
        raise ValueError(
            f"{len(click_histories)} click histories but {len(nonclick_histories)} non-click ones"
        )
    return pad_ids(click_histories), pad_ids(nonclick_histories)


def history_inputs(
    click_histories: Sequence[Iterable], nonclick_histories: Sequence[Iterable] | None = None
) -> dict:
    """Numpy inputs shared by ``predict``, ``recommend`` and ``user_embedding``.

    Args:
      click_histories: one list of clicked video ids per user (oldest first).
      nonclick_histories: one list of exposed-not-clicked ids per user; ``None`` = none.

    Returns:
      ``{CLICK_HISTORY: [B, N] bytes array, NONCLICK_HISTORY: [B, M] bytes array}``.
    """
    click, nonclick = _histories(click_histories, nonclick_histories)
    return {CLICK_HISTORY: click, NONCLICK_HISTORY: nonclick}


def predict_inputs(click_histories, candidates, nonclick_histories=None) -> dict:
    """Numpy inputs of the ``predict`` signature (see ``history_inputs``; ``candidates`` per user)."""
    if len(candidates) != len(click_histories):
        raise ValueError(
            f"{len(click_histories)} click histories but {len(candidates)} candidate lists"
        )
    inputs = history_inputs(click_histories, nonclick_histories)
    inputs[CANDIDATES] = pad_ids(candidates)
    return inputs


def recommend_inputs(click_histories, k: int, nonclick_histories=None) -> dict:
    """Numpy inputs of the ``recommend`` signature (``k`` becomes an int32 scalar)."""
    import numpy as np

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    inputs = history_inputs(click_histories, nonclick_histories)
    inputs[K] = np.int32(k)
    return inputs


def make_example(
    video_id, click_history=(), nonclick_history=(), user_id=None, extra: Mapping | None = None
):
    """Builds one ``tf.Example`` as the ``serving_default`` signature parses it.

    Args:
      video_id: the candidate (target) video id.
      click_history: clicked video ids, oldest first.
      nonclick_history: exposed-not-clicked video ids, oldest first.
      user_id: optional user id.
      extra: optional ``{feature name: tf.train.Feature}`` added as is.

    Returns:
      A ``tf.train.Example``.
    """
    import tensorflow as tf

    def _bytes(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[_as_id(v) for v in values]))

    feats = {
        features.VIDEO_ID: _bytes([video_id]),
        features.CLICK_HISTORY: _bytes(click_history),
        features.NONCLICK_HISTORY: _bytes(nonclick_history),
    }
    if user_id is not None:
        feats[features.USER_ID] = _bytes([user_id])
    feats.update(dict(extra or {}))
    return tf.train.Example(features=tf.train.Features(feature=feats))


def fill_inputs(proto_map, inputs: Mapping) -> None:
    """Copies ``{alias: array-like}`` into a request's ``inputs`` map of TensorProtos."""
    import tensorflow as tf

    for alias, value in inputs.items():
        proto_map[alias].CopyFrom(tf.make_tensor_proto(value))


def make_predict_request(
    model_name: str,
    signature_name: str,
    inputs: Mapping,
    version: int | None = None,
    version_label: str | None = None,
    output_filter: Sequence[str] = (),
):
    """Builds a ``PredictRequest`` for any signature.

    Args:
      model_name: the served model name.
      signature_name: one of ``SIGNATURE_NAMES``.
      inputs: ``{input alias: numpy array or python value}`` (see ``predict_inputs`` etc.).
      version: a specific version; ``None`` = the latest loaded.
      version_label: a version label from the model config (e.g. "stable"); excludes ``version``.
      output_filter: output aliases to return; empty = all.

    Returns:
      A ``tensorflow_serving.apis.predict_pb2.PredictRequest``.
    """
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    set_model_spec(request.model_spec, model_name, signature_name, version, version_label)
    fill_inputs(request.inputs, inputs)
    request.output_filter.extend(output_filter)
    return request


def make_classify_request(
    model_name: str,
    examples: Sequence,
    signature_name: str = SERVING_DEFAULT,
    version: int | None = None,
    version_label: str | None = None,
):
    """Builds a ``ClassificationRequest`` whose input is an ``example_list`` of ``tf.Example``s."""
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    set_model_spec(request.model_spec, model_name, signature_name, version, version_label)
    request.input.example_list.examples.extend(examples)
    return request


def set_model_spec(spec, model_name, signature_name=None, version=None, version_label=None):
    """Fills a ``ModelSpec`` (name, optional signature, version or label)."""
    if version is not None and version_label is not None:
        raise ValueError("give a version or a version label, not both")
    spec.name = model_name
    if signature_name:
        spec.signature_name = signature_name
    if version is not None:
        spec.version.value = int(version)
    if version_label is not None:
        spec.version_label = version_label
