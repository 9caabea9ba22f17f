"""Beam's dill pickler clears every logger's cache twice per round trip; the guard stops it."""

import logging

from apache_beam.internal import dill_pickler
from dill import _dill

from tf_ccl4rec.beam_pickling import skip_unchanged_dill_trace

ROUND_TRIPS = 50


def cache_clears(monkeypatch):
    """Round-trips a DoFn-like object through Beam's dill pickler; how often a logger cache was
    cleared (what `Logger.setLevel` does)."""
    calls = []
    original = logging.Manager._clear_cache

    def counting(manager):
        calls.append(1)
        original(manager)

    monkeypatch.setattr(logging.Manager, "_clear_cache", counting)
    payload = {"fn": lambda row: row + 1, "rows": list(range(10))}
    for _ in range(ROUND_TRIPS):
        assert dill_pickler.loads(dill_pickler.dumps(payload))["fn"](1) == 2
    monkeypatch.setattr(logging.Manager, "_clear_cache", original)
    return len(calls)


def test_round_trips_stop_clearing_the_logger_caches(monkeypatch):
    skip_unchanged_dill_trace()  # another test may have guarded it already: start unguarded
    monkeypatch.setattr(_dill, "_trace", _dill._trace.__wrapped__)
    # Beam 2.59: `_trace(False)` after each dumps and loads, each a setLevel (2 per round trip).
    # If this fails, Beam stopped doing it and the guard can go.
    assert cache_clears(monkeypatch) == 2 * ROUND_TRIPS
    skip_unchanged_dill_trace()
    skip_unchanged_dill_trace()  # idempotent: wraps once
    assert _dill._trace.__wrapped__.__module__ == "dill._dill"
    assert cache_clears(monkeypatch) == 0


def test_the_trace_levels_are_unchanged():
    skip_unchanged_dill_trace()
    _dill._trace(True)
    assert _dill.log.level == logging.INFO
    _dill._trace(False)
    assert _dill.log.level == logging.WARN
