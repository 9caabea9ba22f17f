"""One blessing from two Evaluator verdicts: the model beats the count and the last blessed model.

TFX's Evaluator compares a candidate with one baseline; a push here needs two comparisons (the
user + video count trained in the same run, and the last blessed model), so two Evaluators run and
this component writes the blessing the Pusher and the next run's resolver read. Hand-written:
TFX has no component that combines blessings.

A rerun with unchanged inputs gets the Trainer's cached model back, and the Evaluator against the
last blessed model (now that very model) runs again and passes it; TFX's Pusher would then push
it once more under a new version. So a model that passes is blessed only when it is not already
the newest version under the push destination (same SavedModel fingerprint); otherwise the
blessing says `already_serving` (that version's path) and the Pusher pushes nothing. The check
is on the destination itself, so a model whose push never happened (a run killed between this
gate and the Pusher) or whose version was deleted is pushed again.
"""

import os

from tfx.components.evaluator import constants
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import Model, ModelBlessing
from tfx.utils import io_utils, path_utils

from serving import layout

FINGERPRINT = "fingerprint.pb"  # written by tf.saved_model.save: hashes of graph and weights
ALREADY_SERVING_KEY = "already_serving"


def _blessed(blessing) -> bool:
    return blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1


def _read(path: str) -> bytes | None:
    if not fileio.exists(path):
        return None
    with fileio.open(path, "rb") as f:
        return f.read()


def newest_version_dir(push_base: str) -> str | None:
    """The newest complete version directory under `push_base` (what `latest:1` serves), by the
    servers' rules (`serving.layout`: canonical integer names holding a saved_model.pb)."""
    if not push_base or not fileio.isdir(push_base):
        return None
    versions = [layout.parse_version(n.rstrip("/")) for n in fileio.listdir(push_base)]
    for version in sorted((v for v in versions if v is not None), reverse=True):
        path = os.path.join(push_base, str(version))
        if fileio.exists(os.path.join(path, layout.SAVED_MODEL_FILE)):
            return path
    return None


def serving_version_of(model, push_base: str) -> str | None:
    """The newest version under `push_base` if it is `model`'s SavedModel (same fingerprint)."""
    newest = newest_version_dir(push_base)
    if newest is None:
        return None
    # The directory TFX's Pusher copies from.
    source = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    mine = _read(os.path.join(source, FINGERPRINT))
    return newest if mine is not None and mine == _read(os.path.join(newest, FINGERPRINT)) else None


@component
def BlessingGate(
    model: InputArtifact[Model],
    vs_count: InputArtifact[ModelBlessing],
    vs_last_blessed: InputArtifact[ModelBlessing],
    blessing: OutputArtifact[ModelBlessing],
    push_base: Parameter[str] = "",
):
    """Blesses `model` only when both Evaluators did and it is not already the newest version
    under `push_base` (the Pusher's base directory); records each verdict on the blessing."""
    beats_count, holds_up = _blessed(vs_count), _blessed(vs_last_blessed)
    serving = serving_version_of(model, push_base) if beats_count and holds_up else None
    ok = beats_count and holds_up and serving is None
    blessing.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_int_custom_property("beats_count", int(beats_count))
    blessing.set_int_custom_property("no_worse_than_last_blessed", int(holds_up))
    if serving is not None:
        blessing.set_string_custom_property(ALREADY_SERVING_KEY, serving)
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if ok else constants.NOT_BLESSED_VALUE,
    )
    name = constants.BLESSED_FILE_NAME if ok else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    verdict = "BLESSED" if ok else "NOT BLESSED"
    if serving is not None:
        verdict = f"passed, ALREADY SERVING as {serving}: nothing new to push"
    print(
        f"blessing: {verdict} (beats the user + video count: "
        f"{beats_count}; no worse than the last blessed model: {holds_up})",
        flush=True,
    )
