"""The serving-signature contract of an exported CCL4Rec SavedModel, and request builders.

The Trainer exports these four signatures; the gRPC server, the client, TF Serving and TFMA
read them. Names below are the single source of truth for signature keys and tensor aliases.

==================  ======================  ==================  ====================================
Signature           Input (dtype, shape)    Output              Meaning
==================  ======================  ==================  ====================================
``serving_default`` ``inputs``              ``scores``          click probability of each
                    string ``[B]``          float32 ``[B, 1]``  serialized ``tf.Example`` (features
                                                                of ``tf_ccl4rec.features``). Valid
                                                                for Predict and Classify.
``predict``         ``click_history``       ``probabilities``   click probability of each candidate;
                    string ``[B, N]``       float32 ``[B, C]``  0 where the candidate is padding.
                    ``nonclick_history``
                    string ``[B, M]``
                    ``candidates``
                    string ``[B, C]``
``recommend``       ``click_history``,      ``video_ids``       top-k over the whole vocabulary,
                    ``nonclick_history``    string ``[B, k]``   clicked videos excluded, sorted by
                    as above; ``k`` int32   ``scores``          score (descending).
                    scalar                  float32 ``[B, k]``
``user_embedding``  ``click_history``,      ``embedding``       the user vector u (for ANN
                    ``nonclick_history``    float32 ``[B, D]``  retrieval).
==================  ======================  ==================  ====================================

Ids are the raw video ids users have, as strings (integer ids are sent as their decimal text).
``""`` is padding; the model maps an id outside its vocabulary to its OOV bucket, so unknown ids
and empty histories (all padding, or a zero-width ``[B, 0]`` tensor) are valid requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tf_ccl4rec import features

# --- signature keys ----------------------------------------------------------------------------
SERVING_DEFAULT = "serving_default"  # == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
PREDICT = "predict"
RECOMMEND = "recommend"
USER_EMBEDDING = "user_embedding"
SIGNATURE_NAMES = (SERVING_DEFAULT, PREDICT, RECOMMEND, USER_EMBEDDING)

# --- input aliases -----------------------------------------------------------------------------
EXAMPLES = "inputs"  # == tf.saved_model.CLASSIFY_INPUTS, so Classify accepts serving_default
CLICK_HISTORY = features.CLICK_HISTORY
NONCLICK_HISTORY = features.NONCLICK_HISTORY
CANDIDATES = "candidates"
K = "k"

# --- output aliases ----------------------------------------------------------------------------
SCORES = "scores"  # == tf.saved_model.CLASSIFY_OUTPUT_SCORES
CLASSES = "classes"  # == tf.saved_model.CLASSIFY_OUTPUT_CLASSES (not exported; Classify allows it)
PROBABILITIES = "probabilities"
VIDEO_IDS = "video_ids"
EMBEDDING = "embedding"

PADDING = ""  # padding id in every string id tensor

# signature -> {input alias: (dtype name, rank)}; rank 0 = scalar. Dtype names are tf.DType names.
INPUTS: dict[str, dict[str, tuple[str, int]]] = {
    SERVING_DEFAULT: {EXAMPLES: ("string", 1)},
    PREDICT: {
        CLICK_HISTORY: ("string", 2),
        NONCLICK_HISTORY: ("string", 2),
        CANDIDATES: ("string", 2),
    },
    RECOMMEND: {CLICK_HISTORY: ("string", 2), NONCLICK_HISTORY: ("string", 2), K: ("int32", 0)},
    USER_EMBEDDING: {CLICK_HISTORY: ("string", 2), NONCLICK_HISTORY: ("string", 2)},
}
# signature -> {output alias: (dtype name, rank)}
OUTPUTS: dict[str, dict[str, tuple[str, int]]] = {
    SERVING_DEFAULT: {SCORES: ("float32", 2)},
    PREDICT: {PROBABILITIES: ("float32", 2)},
    RECOMMEND: {VIDEO_IDS: ("string", 2), SCORES: ("float32", 2)},
    USER_EMBEDDING: {EMBEDDING: ("float32", 2)},
}


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


def contract_violations(signature_defs: Mapping) -> list[str]:
    """What in ``{name: SignatureDef}`` breaks the contract above (empty list = conforms).

    Checks every contract signature is present with exactly the contract's input and output
    aliases, dtypes and ranks. Extra signatures are allowed.

    Args:
      signature_defs: e.g. ``GetModelMetadata``'s ``SignatureDefMap.signature_def`` or a
        MetaGraphDef's ``signature_def``.

    Returns:
      Human-readable problems, one per line.
    """
    import tensorflow as tf

    problems = []

    def described(tensor_infos):
        out = {}
        for alias, info in tensor_infos.items():
            rank = -1 if info.tensor_shape.unknown_rank else len(info.tensor_shape.dim)
            out[alias] = (tf.as_dtype(info.dtype).name, rank)
        return out

    for name in SIGNATURE_NAMES:
        if name not in signature_defs:
            problems.append(f"missing signature {name!r}")
            continue
        for side, want, got in (
            ("input", INPUTS[name], described(signature_defs[name].inputs)),
            ("output", OUTPUTS[name], described(signature_defs[name].outputs)),
        ):
            if got != want:
                problems.append(f"{name}: {side}s are {got}, the contract says {want}")
    return problems


def validate_export(saved_model_dir: str) -> list[str]:
    """``contract_violations`` of the SavedModel in ``saved_model_dir`` (reads saved_model.pb).

    Raises:
      OSError: if ``saved_model_dir`` has no readable saved_model.pb.
    """
    import os

    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    if not proto.meta_graphs:
        return ["saved_model.pb holds no MetaGraph"]
    return contract_violations(proto.meta_graphs[0].signature_def)
