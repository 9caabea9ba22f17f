"""tf_ccl4rec/beam_overhead.py: Beam's dill pickler clears every logger's cache twice per round
trip (the guard stops it); Beam inspects the same DoFn methods' signatures again and again (the
memo answers as Beam does, once per function); Beam builds a new view of the pipeline options on
every `view_as` (a reused view answers as Beam's would); Beam's bundles wait for a state-sampler
thread that sleeps up to 200 ms (the bundles' samplers sleep at most 5 ms and still count)."""

import functools
import logging
import time

import apache_beam as beam
import pytest
from apache_beam.internal import dill_pickler
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TypeOptions,
)
from apache_beam.runners.worker import statesampler
from apache_beam.transforms import core, userstate
from apache_beam.utils.counters import CounterFactory
from dill import _dill

from tf_ccl4rec.beam_overhead import (
    _GUARDED,
    STATE_SAMPLING_PERIOD_MS,
    memoize_function_signatures,
    reuse_option_views,
    shorten_state_sampling,
    skip_unchanged_dill_trace,
)

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


# --- DoFn method signatures -----------------------------------------------------------------


class _Stateful(beam.DoFn):
    COUNT = userstate.ReadModifyWriteStateSpec("count", beam.coders.VarIntCoder())

    def process(
        self,
        element,
        count=beam.DoFn.StateParam(COUNT),  # noqa: B008 (Beam's idiom)
        window=beam.DoFn.WindowParam,
    ):
        yield element

    def finish_bundle(self):
        pass


def _plain(a, b=1, *rest, c=2, **extra):
    return a


@functools.wraps(_plain)
def _wrapping(*args, **kwargs):
    return _plain(*args, **kwargs)


CALLABLES = {
    "function": _plain,
    "lambda": lambda x, y=3: x,
    "wraps": _wrapping,
    "bound method": _Stateful().process,
    "builtin": len,
    "partial": functools.partial(_plain, 1),
}


@pytest.fixture
def memoized(monkeypatch):
    """Beam's own function is restored after the test (another test may have patched it)."""
    original = getattr(
        core.get_function_args_defaults, "__wrapped__", core.get_function_args_defaults
    )
    monkeypatch.setattr(core, "get_function_args_defaults", original)
    memoize_function_signatures()
    memoize_function_signatures()  # idempotent: wraps once
    assert core.get_function_args_defaults.__wrapped__ is original
    return original


@pytest.mark.parametrize("name", CALLABLES)
def test_the_memo_answers_as_beam_does_and_fresh_lists_each_time(memoized, name):
    f = CALLABLES[name]
    expected = memoized(f)
    first = core.get_function_args_defaults(f)
    second = core.get_function_args_defaults(f)
    assert first == expected and second == expected
    assert first[0] is not second[0] and first[1] is not second[1]  # callers may mutate them


def test_the_memo_inspects_a_function_once_for_any_instance(memoized, monkeypatch):
    calls = []  # Beam's function inspects through core.get_signature
    original_signature = core.get_signature
    monkeypatch.setattr(core, "get_signature", lambda f: calls.append(f) or original_signature(f))
    for _ in range(3):
        core.get_function_args_defaults(_Stateful().process)  # a new instance each time
        core.get_function_args_defaults(_plain)
    assert len(calls) == 2  # one inspection each, whatever the instance
    core.get_function_args_defaults(len)
    core.get_function_args_defaults(len)
    assert len(calls) == 4  # builtins are not remembered


def test_a_redefined_function_is_inspected_again(memoized):
    def f(x, y=1):
        return x

    assert core.get_function_args_defaults(f) == (["x", "y"], [1])
    f.__defaults__ = (5,)
    assert core.get_function_args_defaults(f) == (["x", "y"], [5])
    f.__code__ = (lambda x, z, w=0: x).__code__
    f.__defaults__ = (0,)
    assert core.get_function_args_defaults(f) == (["x", "z", "w"], [0])


def test_state_specs_are_still_found(memoized):
    for _ in range(2):  # once inspected, once from the memo
        states, timers = userstate.get_dofn_specs(_Stateful())
        assert [s.name for s in states] == ["count"] and not timers
        assert userstate.is_stateful_dofn(_Stateful())
        assert not userstate.is_stateful_dofn(core.CallableWrapperDoFn(lambda x: x))


# --- views of pipeline options ------------------------------------------------------------


@pytest.fixture
def reused(monkeypatch):
    """Beam's own view_as is restored after the test (another test may have patched it)."""
    original = getattr(PipelineOptions.view_as, "__wrapped__", PipelineOptions.view_as)
    monkeypatch.setattr(PipelineOptions, "view_as", original)
    reuse_option_views()
    reuse_option_views()  # idempotent: wraps once
    assert PipelineOptions.view_as.__wrapped__ is original
    return original


def parsers_built(monkeypatch):
    """Counts the argparse parsers Beam builds (one per view it makes)."""
    from apache_beam.options import pipeline_options

    built = []
    original = pipeline_options._BeamArgumentParser.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(pipeline_options._BeamArgumentParser, "__init__", counting)
    return built


def test_a_view_answers_as_beam_does_and_is_made_once(reused, monkeypatch):
    flags = ["--runner=DirectRunner", "--direct_num_workers=3", "--job_name=j"]
    options, fresh = PipelineOptions(flags), PipelineOptions(flags)
    built = parsers_built(monkeypatch)
    for cls in (StandardOptions, DirectOptions, TypeOptions, GoogleCloudOptions):
        view = options.view_as(cls)
        expected = reused(fresh, cls)
        names = view._visible_option_list()
        assert names == expected._visible_option_list()
        assert {n: getattr(view, n) for n in names} == {n: getattr(expected, n) for n in names}
        assert options.view_as(cls) is view  # the second call: no new parser
    assert len(built) == 4 + 4  # one per class for `options`, one per class for `fresh`
    assert options.get_all_options() == fresh.get_all_options()


def test_writes_through_a_reused_view_reach_the_source_and_other_views(reused):
    options = PipelineOptions(["--direct_num_workers=3"])
    options.view_as(DirectOptions).direct_num_workers = 5
    assert options.view_as(DirectOptions).direct_num_workers == 5
    assert options.get_all_options()["direct_num_workers"] == 5
    # A view of a view shares the same store, as Beam's views do.
    options.view_as(StandardOptions).view_as(DirectOptions).direct_num_workers = 7
    assert options.view_as(DirectOptions).direct_num_workers == 7


def test_a_new_store_new_flags_or_a_dropped_option_make_a_new_view(reused, monkeypatch):
    options = PipelineOptions(["--direct_num_workers=3"])
    first = options.view_as(DirectOptions)
    options._all_options = dict(options._all_options)  # a new store
    assert options.view_as(DirectOptions) is not first
    second = options.view_as(DirectOptions)
    options._flags = ["--direct_num_workers=4"]  # new flags: parsed again
    third = options.view_as(DirectOptions)
    assert third is not second
    assert third.direct_num_workers == 3  # the store's value wins, as in Beam
    del options._all_options["direct_running_mode"]  # Beam's view_as puts it back: so do we
    assert options.view_as(DirectOptions).direct_running_mode == "in_memory"
    assert "direct_running_mode" in options._all_options


# --- The state sampler's period --------------------------------------------------------------


def test_beams_own_default_period_is_200_ms():
    # If this fails, Beam changed its default and the workaround may no longer be needed.
    init = statesampler.StateSampler.__init__
    original = getattr(init, "__wrapped__", init)
    assert original.__defaults__ == (statesampler.DEFAULT_SAMPLING_PERIOD_MS,)
    assert statesampler.DEFAULT_SAMPLING_PERIOD_MS == 200


def test_the_bundles_samplers_sleep_at_most_the_short_period(monkeypatch):
    shorten_state_sampling()  # another test may have wrapped it already: start from Beam's own
    monkeypatch.setattr(
        statesampler.StateSampler, "__init__", statesampler.StateSampler.__init__.__wrapped__
    )
    shorten_state_sampling()
    shorten_state_sampling()  # idempotent: wraps once
    assert not hasattr(statesampler.StateSampler.__init__.__wrapped__, _GUARDED)
    periods = []
    original_start = statesampler.StateSampler.start

    def start(self):
        periods.append(self.sampling_period_ms)
        original_start(self)

    monkeypatch.setattr(statesampler.StateSampler, "start", start)
    with beam.Pipeline() as pipeline:  # DirectRunner: Beam's own bundle processors
        _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2)
    # Beam builds each bundle's sampler without a period; if it starts passing one, this fails.
    assert periods and set(periods) == {STATE_SAMPLING_PERIOD_MS}
    kept = statesampler.StateSampler("explicit", CounterFactory(), sampling_period_ms=50)
    assert kept.sampling_period_ms == 50


def test_the_short_period_still_counts_the_time_of_a_state():
    shorten_state_sampling()
    counters = CounterFactory()
    sampler = statesampler.StateSampler("stage", counters)
    sampler.start()
    with sampler.scoped_state("step", "process"):
        time.sleep(0.05)
    sampler.stop()
    sampler.commit_counters()
    if not statesampler.FAST_SAMPLER:
        pytest.skip("Beam's slow (pure Python) sampler does not sample; nothing to count")
    (counter,) = [c for c in counters.get_counters() if c.name.name == "process-msecs"]
    # At most 5 ms per sample: 50 ms of sleep is counted; the bound is loose (an idle state).
    assert counter.value() >= 25
