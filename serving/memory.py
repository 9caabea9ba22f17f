"""Keeping the server's memory flat under large requests: an in-flight byte budget and trimming.

The per-request limits (``serving.limits``) bound one request; this bounds how many large ones
run at once. Running a request holds working memory several times its message size (decoded
ids, the Transform's sparse tensors, scores); the allocator keeps what concurrent large requests
used at their peak, so RSS grew with every burst of concurrent large requests. With the budget,
requests whose message sizes add up to more than ``--max-inflight-bytes`` wait their turn (in
arrival order), so the peak is that of the budget, not of the thread pool. After a large request
the C heap's free pages go back to the system (glibc ``malloc_trim``).

TensorFlow's oneDNN build (on by default on x86 Linux) allocates tensor memory through its own
pool (``MklCPUAllocator``, a BFC allocator), which keeps every page it ever used: the server's
RSS rose by the peak of each new size of request and never came back, whatever was trimmed.
The server therefore runs with ``TF_ENABLE_ONEDNN_OPTS=0`` (TF's plain CPU allocator, i.e.
malloc/free, which the trim and the mmap threshold below act on), set before TF loads.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
import time

import grpc

from serving.errors import ServingError

TRIM_AFTER_BYTES = 1024 * 1024  # requests at least this large trim the heap when they finish


TRIM_DELAY_S = 0.2  # after the request: gRPC frees the request and response messages first
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD = 1024 * 1024


# Read by TF when it loads; an explicit value in the environment wins.
SERVER_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def use_plain_cpu_allocator() -> bool:
    """Sets ``SERVER_ENV`` for this process if TensorFlow is not loaded yet; True if it could.

    The serving entry points (``ccl4rec serve``, ``python -m serving.server``) call it before
    they import TensorFlow; ``onednn_pool_active`` tells the server whether it took effect.
    """
    if "tensorflow" in sys.modules:
        return False
    for key, value in SERVER_ENV.items():
        os.environ.setdefault(key, value)
    return True


def onednn_pool_active() -> bool:
    """Whether this process's TensorFlow allocates through oneDNN's pool (RSS keeps its peak)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
        return libc
    except (OSError, AttributeError):  # not glibc (e.g. macOS, musl): nothing to tune
        return None


_LIBC = _libc()


def release_free_memory() -> None:
    """Returns the C heap's free pages to the system (glibc only; a no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> None:
    """Allocations of ``size`` bytes or more always get their own mapping, unmapped on free.

    glibc otherwise raises its mmap threshold to the largest block freed (up to 32 MiB), after
    which a large request's buffers come from the heap and stay there, fragmented.
    """
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, int(size))


class _Trimmer:
    """One daemon thread that trims the heap shortly after large requests finish."""

    def __init__(self):
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def schedule(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heap-trim", daemon=True)
                self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            time.sleep(TRIM_DELAY_S)
            self._wanted.clear()
            release_free_memory()


_TRIMMER = _Trimmer()


def schedule_trim() -> None:
    """Trims the heap ``TRIM_DELAY_S`` after now (coalescing calls), off the request thread."""
    if _LIBC is not None:
        _TRIMMER.schedule()


class ByteBudget:
    """At most ``capacity`` request bytes execute at once; the rest wait in arrival order.

    A request larger than ``capacity`` runs alone (it counts as ``capacity``); the per-request
    message limit keeps it bounded.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._used = 0
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    @contextlib.contextmanager
    def hold(self, size: int, timeout: float | None = None):
        """Holds ``size`` bytes of the budget while the block runs.

        Raises:
          ServingError: DEADLINE_EXCEEDED if the bytes do not free up within ``timeout`` s.
        """
        size = max(0, min(int(size), self.capacity))
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            ready = self._cond.wait_for(
                lambda: self._queue[0] is ticket and self._used + size <= self.capacity, timeout
            )
            self._queue.remove(ticket)
            if ready:
                self._used += size
            self._cond.notify_all()
        if not ready:
            raise ServingError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the deadline passed while the request ({size} bytes) waited for "
                f"--max-inflight-bytes {self.capacity} to free up",
            )
        try:
            yield
        finally:
            with self._cond:
                self._used -= size
                self._cond.notify_all()
            if size >= TRIM_AFTER_BYTES:
                schedule_trim()
