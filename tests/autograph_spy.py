"""Which of our functions AutoGraph converts while a block of code runs.

The Keras entry points of our models and the export signatures are traced without AutoGraph
(tf_ccl4rec/model.py says why); a new `tf.function` or model method that forgets it is converted
again, silently and slowly. Tests that trace our code wrap the tracing in
`no_conversions_of_ours()`.
"""

import contextlib

from tensorflow.python.autograph.impl import api as autograph_api

OURS = ("tf_ccl4rec", "serving", "pipeline")


@contextlib.contextmanager
def conversions():
    """Yields a list that collects `module.qualname` of every function AutoGraph converts in the
    block (`converted_call` calls `_convert_actual` for each function it converts, cached or not)."""
    converted = []
    original = autograph_api._convert_actual

    def spy(entity, program_ctx):
        converted.append(f"{entity.__module__}.{getattr(entity, '__qualname__', entity)}")
        return original(entity, program_ctx)

    autograph_api._convert_actual = spy
    try:
        yield converted
    finally:
        autograph_api._convert_actual = original


@contextlib.contextmanager
def no_conversions_of_ours():
    """Fails the block if AutoGraph converted any function of tf_ccl4rec, serving or pipeline."""
    with conversions() as converted:
        yield converted
    ours = sorted({name for name in converted if name.startswith(OURS)})
    assert not ours, f"AutoGraph converted our functions (trace them without it): {ours}"
