"""Request execution: TF Serving's Predict, Classify and GetModelMetadata on one loaded version.

Every bad request raises ``ServingError`` with TF Serving's status code: INVALID_ARGUMENT for
missing/extra inputs, wrong dtypes or shapes, batches over the limit, unknown output aliases and
errors the model raises on bad values; FAILED_PRECONDITION for an unknown signature in Predict.
"""

from __future__ import annotations

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
)

from serving import signatures as sig  # noqa: E402
from serving.errors import GRPC_CODES, ServingError  # noqa: E402
from serving.errors import invalid as _invalid  # noqa: E402
from serving.limits import RequestLimits  # noqa: E402
from serving.versions import LoadedVersion  # noqa: E402


def _call(fn, kwargs) -> dict:
    try:
        return fn(**kwargs)
    except tf.errors.OpError as err:  # bad values (e.g. k > vocabulary) come back as TF errors
        code = GRPC_CODES.get(err.error_code, grpc.StatusCode.UNKNOWN)
        raise ServingError(code, err.message) from err


def _limits(limits: RequestLimits | int) -> RequestLimits:
    return RequestLimits(max_batch=limits) if isinstance(limits, int) else limits


def _proto_shape(proto) -> list[int] | None:
    if proto.tensor_shape.unknown_rank:
        return None
    return [d.size for d in proto.tensor_shape.dim]


def _to_tensor(alias: str, proto, dtype) -> tf.Tensor:
    """The TensorProto as an eager tensor, decoded in C++ (``tf.io.parse_tensor``).

    Not ``tf.make_ndarray``: for string tensors that builds one Python bytes object per id (and
    ``tf.constant`` copies them again), which for a large request left the server's memory
    fragmented and its RSS growing from request to request.
    """
    try:
        return tf.io.parse_tensor(proto.SerializeToString(), out_type=dtype)
    except (tf.errors.OpError, ValueError) as err:  # malformed (e.g. content size != shape)
        message = getattr(err, "message", str(err))
        raise _invalid(f"input {alias!r} is not a valid TensorProto: {message}") from err


def _serialized_examples(array) -> list:
    """The ``tf.Example``s in a string tensor of ``serving_default``; those that do not parse are
    left to the model (it answers them with its own error)."""
    examples = []
    for value in array.reshape(-1):
        try:
            examples.append(tf.train.Example.FromString(value))
        except (DecodeError, TypeError):
            continue
    return examples


def check_recommend_filled(result: dict, k: int) -> None:
    """``recommend`` must answer exactly ``k`` real ids per user.

    A model asked for more videos than a user has not clicked pads with ``""`` and score 0 (the
    CCL4Rec export; it also caps ``k`` at its catalogue). That silent padding is refused instead:
    INVALID_ARGUMENT naming the largest ``k`` that every user in the request can get.
    """
    if sig.VIDEO_IDS not in result:
        return
    ids = result[sig.VIDEO_IDS].numpy()
    if ids.ndim != 2 or ids.shape[0] == 0:
        return
    filled = (ids != sig.PADDING.encode()).sum(axis=1)
    if ids.shape[1] >= k and int(filled.min()) >= k:
        return
    user = int(filled.argmin())
    raise _invalid(
        f"k={k} is more than the {int(filled[user])} videos the model can recommend to user "
        f"{user} of this request (its catalogue minus the videos the user clicked); "
        f"ask for k <= {int(filled.min())}"
    )


def run_predict(loaded: LoadedVersion, request, limits: RequestLimits | int):
    """Runs a ``PredictRequest`` on one loaded version (TF Serving's Predict semantics).

    Args:
      loaded: the version that answers.
      request: the ``PredictRequest``.
      limits: the per-request limits (an int = ``max_batch`` only, the other limits default).

    Raises:
      ServingError: with TF Serving's status code for every bad request; INVALID_ARGUMENT for a
        request over ``limits`` and for ``recommend`` with ``k`` above what it can fill.
    """
    limits = _limits(limits)
    name = request.model_spec.signature_name or sig.SERVING_DEFAULT
    fn = loaded.functions.get(name)
    if fn is None:
        raise ServingError(
            grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
        )
    specs = fn.structured_input_signature[1]
    sent, expected = set(request.inputs), set(specs)
    if sent != expected:
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    kwargs = {}
    for alias, proto in request.inputs.items():
        spec = specs[alias]
        if proto.dtype != spec.dtype.as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "an invalid dtype"
            raise _invalid(f"Expects arg[{alias}] to be {spec.dtype.name} but {got} is provided")
        declared = _proto_shape(proto)
        if declared is not None:  # limits first, from the header: no oversize array is built
            limits.check_tensor(alias, declared)
        tensor = _to_tensor(alias, proto, spec.dtype)
        if not spec.shape.is_compatible_with(tensor.shape):
            raise _invalid(
                f"input {alias!r} has shape {tensor.shape.as_list()}, the signature expects "
                f"{spec.shape.as_list() if spec.shape.rank is not None else 'any'}"
            )
        limits.check_tensor(alias, tensor.shape.as_list())
        if alias == sig.EXAMPLES and spec.dtype == tf.string:
            limits.check_examples(_serialized_examples(tensor.numpy()))
        kwargs[alias] = tensor
    k = None
    if name == sig.RECOMMEND and sig.K in kwargs and kwargs[sig.K].shape.rank == 0:
        k = int(kwargs[sig.K].numpy())
        users = kwargs[sig.CLICK_HISTORY].shape[0] if sig.CLICK_HISTORY in kwargs else 1
        limits.check_candidates(f"recommend {users} users x k={k}", users * max(k, 0))
    outputs = fn.structured_outputs
    aliases = list(request.output_filter) or list(outputs)
    for alias in aliases:
        if alias not in outputs:
            raise _invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{','.join(sorted(outputs))}}}."
            )
    if len(set(aliases)) != len(aliases):
        raise _invalid(f"duplicate output tensor alias in {aliases}")
    result = _call(fn, kwargs)
    if k is not None and k >= 1:
        check_recommend_filled(result, k)
    response = predict_pb2.PredictResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, name, loaded.version)
    for alias in aliases:
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(result[alias].numpy()))
    return response


def _examples(request_input) -> list:
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return list(request_input.example_list.examples)
    if kind == "example_list_with_context":
        ctx = request_input.example_list_with_context
        merged = []
        for example in ctx.examples:
            e = type(example)()
            e.CopyFrom(ctx.context)
            e.MergeFrom(example)  # the example's own features win, like TF Serving's concat
            merged.append(e)
        return merged
    return []


def run_classify(loaded: LoadedVersion, request, limits: RequestLimits | int):
    """Runs a ``ClassificationRequest`` (TF Serving's Classify semantics).

    The signature must take one string tensor (the serialized ``tf.Example``s) and output
    ``scores`` float ``[batch, num_classes]`` and/or ``classes`` string ``[batch, num_classes]``.

    Raises:
      ServingError: INVALID_ARGUMENT for an unknown signature, a signature of the wrong form,
        an empty input or one over ``limits`` (batch size, history length).
    """
    limits = _limits(limits)
    name = request.model_spec.signature_name or sig.SERVING_DEFAULT
    fn = loaded.functions.get(name)
    if fn is None:
        raise _invalid(f"No signature was found with the name: {name}")
    specs = fn.structured_input_signature[1]
    if len(specs) != 1:
        raise _invalid("Expected one input Tensor.")
    ((alias, spec),) = specs.items()
    if spec.dtype != tf.string:
        raise _invalid(f"Classify needs a string input; signature {name!r} takes {spec.dtype.name}")
    outputs = fn.structured_outputs
    if sig.SCORES not in outputs and sig.CLASSES not in outputs:
        raise _invalid(
            f"Expected classification signature outputs to contain at least one of "
            f"{{'{sig.CLASSES}', '{sig.SCORES}'}}; {name!r} has {sorted(outputs)}."
        )
    examples = _examples(request.input)
    if not examples:
        raise _invalid("Input is empty.")
    limits.check_batch(len(examples))
    limits.check_examples(examples)
    serialized = tf.constant([e.SerializeToString() for e in examples])
    result = _call(fn, {alias: serialized})
    batch = len(examples)
    scores = result[sig.SCORES].numpy() if sig.SCORES in result else None
    classes = result[sig.CLASSES].numpy() if sig.CLASSES in result else None
    for tensor, what in ((scores, "scores"), (classes, "classes")):
        if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != batch):
            raise _invalid(
                f"Expected {what} Tensor shape: [batch_size num_classes] but got "
                f"{list(tensor.shape)} for batch_size {batch}"
            )
    if scores is not None and classes is not None and scores.shape != classes.shape:
        raise _invalid(f"scores {scores.shape} and classes {classes.shape} differ in shape")
    response = classification_pb2.ClassificationResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, name, loaded.version)
    num_classes = (scores if scores is not None else classes).shape[1]
    for i in range(batch):
        classification = response.result.classifications.add()
        for j in range(num_classes):
            c = classification.classes.add()
            if scores is not None:
                c.score = float(scores[i, j])
            if classes is not None:
                c.label = classes[i, j].decode("utf-8", "replace")
    return response


def run_metadata(loaded: LoadedVersion, request):
    """Answers ``GetModelMetadata`` (only ``signature_def`` is supported, as in TF Serving)."""
    if not request.metadata_field:
        raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for f in request.metadata_field:
        if f != "signature_def":
            raise _invalid(f"Metadata field {f} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, version=loaded.version)
    sdm = get_model_metadata_pb2.SignatureDefMap()
    for key, sdef in loaded.signature_defs.items():
        sdm.signature_def[key].CopyFrom(sdef)
    response.metadata["signature_def"].Pack(sdm)
    return response
