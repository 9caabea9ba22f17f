"""One blessing from two Evaluator verdicts: the model beats the count and the last blessed model.

TFX's Evaluator compares a candidate with one baseline; a push here needs two comparisons (the
user + video count trained in the same run, and the last blessed model), so two Evaluators run and
this component writes the blessing the Pusher and the next run's resolver read. Hand-written:
TFX has no component that combines blessings.
"""

import os

from tfx import v1 as tfx
from tfx.components.evaluator import constants
from tfx.utils import io_utils

ModelBlessing = tfx.types.standard_artifacts.ModelBlessing


def _blessed(blessing) -> bool:
    return blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1


@tfx.dsl.components.component
def BlessingGate(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    vs_count: tfx.dsl.components.InputArtifact[ModelBlessing],
    vs_last_blessed: tfx.dsl.components.InputArtifact[ModelBlessing],
    blessing: tfx.dsl.components.OutputArtifact[ModelBlessing],
):
    """Blesses `model` only when both Evaluators did; records each verdict on the blessing."""
    beats_count, holds_up = _blessed(vs_count), _blessed(vs_last_blessed)
    ok = beats_count and holds_up
    blessing.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri
    )
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_int_custom_property("beats_count", int(beats_count))
    blessing.set_int_custom_property("no_worse_than_last_blessed", int(holds_up))
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if ok else constants.NOT_BLESSED_VALUE,
    )
    name = constants.BLESSED_FILE_NAME if ok else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), "")
    print(
        f"blessing: {'BLESSED' if ok else 'NOT BLESSED'} (beats the user + video count: "
        f"{beats_count}; no worse than the last blessed model: {holds_up})",
        flush=True,
    )
