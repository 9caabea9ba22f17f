"""The serving-signature contract of an exported CCL4Rec SavedModel.

The Trainer exports these four signatures (``tf_ccl4rec.export``); the gRPC server, the client
(``serving``), TF Serving and TFMA read them. Names below are the single source of truth for
signature keys and tensor aliases. This module is the one both sides depend on: it imports
neither TensorFlow at module level nor anything from ``serving``.

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
``recommend``       ``click_history``,      ``video_ids``       top-k over the whole vocabulary
                    ``nonclick_history``    string ``[B, k]``   (a two-stage export: over the N
                    as above; ``k`` int32   ``scores``          videos retrieved first), clicked
                    scalar                  float32 ``[B, k]``  videos excluded, sorted by score
                                                                (descending).
``user_embedding``  ``click_history``,      ``embedding``       the user vector u (for ANN
                    ``nonclick_history``    float32 ``[B, D]``  retrieval).
==================  ======================  ==================  ====================================

Ids are the raw video ids users have, as strings (integer ids are sent as their decimal text).
``""`` is padding; the model maps an id outside its vocabulary to its OOV bucket, so unknown ids
and empty histories (all padding, or a zero-width ``[B, 0]`` tensor) are valid requests.
"""

from __future__ import annotations

from collections.abc import Mapping

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
