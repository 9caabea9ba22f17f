"""Per-request limits of ``ccl4rec serve``: what one request may cost, checked before the model runs.

Without them one request could cost unbounded memory (a 60 MB request with a 5.7 M-id history
was served, and the server kept gigabytes of RSS afterwards). Each limit is a ``ccl4rec serve``
flag; a request over a limit is refused with INVALID_ARGUMENT and a message naming the flag,
except the message size, which gRPC itself refuses with RESOURCE_EXHAUSTED before decoding.

Histories longer than ``max_history`` are refused, not truncated: the server does not know the
model's window (``max_history`` of the Transform, 160 by default), and ``recommend`` excludes every
clicked id it is sent, also those beyond the window, so truncating would silently change its
answer. Clients send the newest ids (histories are oldest first) up to the limit.

The checks read shapes from the ``TensorProto`` headers, so an oversize request is refused
before its ids are turned into arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from serving import signatures as sig
from serving.errors import invalid

MiB = 1024 * 1024

DEFAULT_MAX_BATCH = 1024
DEFAULT_MAX_HISTORY = 1000
DEFAULT_MAX_CANDIDATES = 100_000
DEFAULT_MAX_MESSAGE_BYTES = 4 * MiB
DEFAULT_MAX_INFLIGHT_BYTES = 4 * MiB

HISTORY_ALIASES = (sig.CLICK_HISTORY, sig.NONCLICK_HISTORY)


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry.

    Args:
      max_batch: users (rows, or tf.Examples) per request (``--max-batch``).
      max_history: ids per user in each of ``click_history`` / ``nonclick_history``: the padded
        width N of a history tensor, or the length of a tf.Example's history feature
        (``--max-history``).
      max_candidates: candidate ids per request: ``B * C`` of ``predict``'s ``candidates`` and
        ``B * k`` of ``recommend`` (``--max-candidates``).
      max_message_bytes: the largest request message gRPC accepts (``--max-message-bytes``,
        ``grpc.max_receive_message_length``).
      max_inflight_bytes: request bytes executing at once; more wait their turn
        (``--max-inflight-bytes``, ``serving.memory.ByteBudget``).
    """

    max_batch: int = DEFAULT_MAX_BATCH
    max_history: int = DEFAULT_MAX_HISTORY
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES

    def __post_init__(self):
        for name in (
            "max_batch",
            "max_history",
            "max_candidates",
            "max_message_bytes",
            "max_inflight_bytes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    # --- checks (each raises ServingError INVALID_ARGUMENT) ------------------------------------
    def check_batch(self, batch: int) -> None:
        if batch > self.max_batch:
            raise invalid(
                f"Task size {batch} is larger than maximum input batch size {self.max_batch}"
            )

    def check_history(self, alias: str, length: int, where: str = "") -> None:
        if length > self.max_history:
            raise invalid(
                f"{alias}{where} has {length} ids per user, more than the server's limit of "
                f"{self.max_history} (--max-history); send the newest {self.max_history} ids"
            )

    def check_candidates(self, what: str, count: int) -> None:
        if count > self.max_candidates:
            raise invalid(
                f"{what} = {count} candidate ids, more than the server's limit of "
                f"{self.max_candidates} per request (--max-candidates); split the request"
            )

    def check_tensor(self, alias: str, shape: list[int]) -> None:
        """Checks one Predict input by its shape (from the TensorProto, before decoding)."""
        if len(shape) >= 1:
            self.check_batch(shape[0])
        if alias in HISTORY_ALIASES and len(shape) == 2:
            self.check_history(alias, shape[1])
        if alias == sig.CANDIDATES and len(shape) == 2:
            self.check_candidates(f"candidates {shape[0]} x {shape[1]}", shape[0] * shape[1])

    def check_examples(self, examples: Iterable) -> None:
        """Checks the history features of ``tf.train.Example``s (Classify, ``serving_default``)."""
        for i, example in enumerate(examples):
            feature = example.features.feature
            for alias in HISTORY_ALIASES:
                if alias in feature:
                    values = feature[alias]
                    kind = values.WhichOneof("kind")
                    length = len(getattr(values, kind).value) if kind else 0
                    self.check_history(alias, length, f" of example {i}")
