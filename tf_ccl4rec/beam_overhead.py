"""Beam 2.59's per-transform Python overhead in small pipelines: the workarounds, `trim_beam_overhead`.

A TFX component on a small split spends most of its time in Beam's bookkeeping, not on rows
(two Evaluators on the tiny pipeline's 40 users: 96 bundles, ~650 transforms). Four costs have
a behaviour-preserving fix here:

- **dill's trace level.** `dill_pickler.dumps` / `loads` call dill's `_trace(False)` after every
  (un)pickling, and `_trace` calls `Logger.setLevel` even when the level is already WARN.
  `setLevel` clears the level cache of every logger in the process (thousands once TensorFlow,
  TFX and Beam are loaded), so each DoFn and bundle Beam pickles costs a full cache walk, and
  every later log call a recomputed level. Beam's `--pickle_library=cloudpickle` avoids dill but
  is still experimental in 2.59; `skip_unchanged_dill_trace` keeps dill and skips the redundant
  `setLevel`.
- **Signatures of DoFn methods.** `userstate.get_dofn_specs` runs `inspect.signature` on every
  method of a DoFn, and Beam asks it ~9 times per DoFn (ParDo construction, `to_runner_api`, the
  direct runner's visit, each bundle processor): 83,000 signatures, ~20 % of the CPU of the two
  Evaluators. `memoize_function_signatures` remembers `core.get_function_args_defaults` per
  Python function, checked against the function's code, defaults, `__wrapped__` and
  `__signature__` on every hit, so a redefined function is inspected again.
- **Views of pipeline options.** `PipelineOptions.view_as(cls)` builds an argparse parser of
  every option of `cls` and parses the flags again on every call, and `Pipeline.apply` asks for
  the type-check options twice per transform (~370 calls for one run of the example builder):
  10-19 % of that run's CPU. `reuse_option_views` hands back the view it made before (see there).
- **The state sampler's sleeps.** Each bundle's `StateSampler` thread sleeps in steps that grow
  by 1.2x from 2 ms to 200 ms, and the bundle's end joins it, so every bundle waits idle for the
  rest of the current sleep (0.5 s in the 33 bundles of a profiled run of the example builder on
  52k rows).
  `shorten_state_sampling` caps the period at STATE_SAMPLING_PERIOD_MS; the thread only adds
  elapsed time to the current state when it wakes, so the counters it feeds are unchanged.
"""

import functools
import logging
import types
import weakref

_GUARDED = "_ccl4rec_trims_beam_overhead"


def _install(owner, name: str, wrapper) -> None:
    """Puts `wrapper` in place of `owner.name`, marked with the guard the workarounds check, with
    the replaced function's name, doc and `__wrapped__` (functools.update_wrapper)."""
    functools.update_wrapper(wrapper, getattr(owner, name))
    setattr(wrapper, _GUARDED, True)
    setattr(owner, name, wrapper)


# The longest sleep of a bundle's state-sampler thread, hence its end's idle wait (Beam: 200 ms).
STATE_SAMPLING_PERIOD_MS = 5


def trim_beam_overhead() -> None:
    """All four workarounds; idempotent. Call before a process runs Beam pipelines in process."""
    skip_unchanged_dill_trace()
    memoize_function_signatures()
    reuse_option_views()
    shorten_state_sampling()


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

    _install(_dill, "_trace", _trace)


def _inspected_state(function: types.FunctionType) -> tuple:
    """What `inspect.signature` of a Python function reads (the objects, compared by identity)."""
    return (
        function.__code__,
        function.__defaults__,
        function.__kwdefaults__,
        getattr(function, "__wrapped__", None),
        getattr(function, "__signature__", None),
    )


def memoize_function_signatures() -> None:
    """Makes Beam's `core.get_function_args_defaults` remember its answer per Python function
    (plain functions and methods bound to any instance; other callables are inspected each time).
    Idempotent. Every caller gets fresh lists, equal to what Beam's own function returns."""
    from apache_beam.transforms import core

    if getattr(core.get_function_args_defaults, _GUARDED, False):
        return
    original = core.get_function_args_defaults
    # A bound method's signature is its function's without the first parameter, whatever the
    # instance: one entry per function, apart for bound and unbound use. Weak keys: the lambdas
    # of a pipeline are dropped with it.
    caches = {False: weakref.WeakKeyDictionary(), True: weakref.WeakKeyDictionary()}

    def get_function_args_defaults(f):
        bound = isinstance(f, types.MethodType)
        function = f.__func__ if bound else f
        if type(function) is not types.FunctionType:
            return original(f)
        state = _inspected_state(function)
        cached = caches[bound].get(function)
        if cached is None or any(a is not b for a, b in zip(cached[0], state, strict=True)):
            args, defaults = original(f)
            cached = (state, tuple(args), tuple(defaults))
            caches[bound][function] = cached
        return list(cached[1]), list(cached[2])

    _install(core, "get_function_args_defaults", get_function_args_defaults)


def reuse_option_views() -> None:
    """Makes `PipelineOptions.view_as(cls)` return the view it made before for the same options
    object and class. Idempotent.

    A view only reads the source's flags (parsed into its own defaults) and shares the source's
    option store, into which Beam copies each option the store lacks. So an earlier view is the
    same answer while the source's flags and store are the very objects it was made from and the
    store still holds every option of the view; otherwise (or the first time) Beam's own method
    runs and its view is remembered. Writes through any view land in the shared store, as before.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    if getattr(PipelineOptions.view_as, _GUARDED, False):
        return
    original = PipelineOptions.view_as
    # Weak keys: the options (and their views) go with the pipeline that held them.
    views = weakref.WeakKeyDictionary()

    def view_as(self, cls):
        per_class = views.setdefault(self, {})
        cached = per_class.get(cls)
        if cached is not None:
            view, flags, store, names = cached
            if (
                flags is self._flags
                and store is self._all_options
                and all(n in store for n in names)
            ):
                return view
        view = original(self, cls)
        names = tuple(view._visible_option_list())
        per_class[cls] = (view, self._flags, self._all_options, names)
        return view

    _install(PipelineOptions, "view_as", view_as)


def shorten_state_sampling() -> None:
    """Makes a `StateSampler` built without a `sampling_period_ms` (as Beam's bundle processors
    build theirs) sample every STATE_SAMPLING_PERIOD_MS at most. Idempotent; an explicit period
    is kept."""
    from apache_beam.runners.worker import statesampler

    if getattr(statesampler.StateSampler.__init__, _GUARDED, False):
        return
    original = statesampler.StateSampler.__init__

    def __init__(self, prefix, counter_factory, sampling_period_ms=STATE_SAMPLING_PERIOD_MS):
        original(self, prefix, counter_factory, sampling_period_ms)

    _install(statesampler.StateSampler, "__init__", __init__)
