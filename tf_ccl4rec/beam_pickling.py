"""Beam's dill pickler without its logging cost.

Beam 2.59's `dill_pickler.dumps` / `loads` call dill's `_trace(False)` after every (un)pickling,
and `_trace` calls `Logger.setLevel` even when the level is already WARN. `setLevel` clears the
level cache of every logger in the process (thousands once TensorFlow, TFX and Beam are loaded),
so each DoFn and bundle Beam pickles costs a full cache walk, and every later log call a
recomputed level. Beam's own option, `--pickle_library=cloudpickle`, avoids dill altogether but
is still experimental in 2.59; this keeps dill and only skips the redundant `setLevel`.
"""

import logging

_GUARDED = "_ccl4rec_skips_unchanged_level"


def skip_unchanged_dill_trace() -> None:
    """Makes dill's `_trace` set the logger level only when it changes. Idempotent; the levels
    `_trace(True)` / `_trace(False)` set (INFO / WARN) are unchanged."""
    from dill import _dill

    if getattr(_dill._trace, _GUARDED, False):
        return

    def _trace(boolean):
        level = logging.INFO if boolean else logging.WARN
        if _dill.log.level != level:
            _dill.log.setLevel(level)

    setattr(_trace, _GUARDED, True)
    _trace.__wrapped__ = _dill._trace
    _dill._trace = _trace
