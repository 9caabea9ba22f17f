"""Keras layers of CCL4Rec."""

from tf_ccl4rec.layers.ctr import CTRHead
from tf_ccl4rec.layers.encoder import SequenceEncoder
from tf_ccl4rec.layers.scoring import BehaviorScorer, masked_log_softmax, masked_softmax
from tf_ccl4rec.layers.video import VideoRepresentation
from tf_ccl4rec.layers.wide import WideLogit, history_statistics

__all__ = [
    "BehaviorScorer",
    "CTRHead",
    "SequenceEncoder",
    "VideoRepresentation",
    "WideLogit",
    "history_statistics",
    "masked_log_softmax",
    "masked_softmax",
]
