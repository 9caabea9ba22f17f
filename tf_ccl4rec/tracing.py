"""What tracing a Keras model costs us, cut without changing what is traced.

1. `VariablesBeforeTracing`: a `tf.function` whose first trace creates variables is traced a
   second time (the first graph holds the variables' initialisers; the function that runs is a
   new trace that must not create any). Keras builds a model's layers and the optimizer's slots
   inside the first train step, so every `fit` of a fresh model built its ~5,700-op train step
   twice: about 4 s of each 8 s on a tiny CCL4Rec (scripts/bench_trace.py), paid by every
   Trainer run, tuner trial and test model.
2. `keep_autograph_out_of_keras()` (run on import): AutoGraph rewrites every function a
   `tf.function` reaches unless a conversion rule excludes its module. TensorFlow's rules
   exclude `keras`, the package Keras 2 had up to TF 2.15, but not `tf_keras`, the same code
   under its TF 2.16 name: a process converted ~200 of Keras's own functions for its first fit,
   evaluate and predict (~9 s; 4.7 s for predict's data adapters alone). The rule restores
   Keras 2's treatment; Keras 2 has always run unconverted.
"""

import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config


def keep_autograph_out_of_keras() -> None:
    """Adds AutoGraph's do-not-convert rule for `tf_keras` (TensorFlow's rules list only `keras`).

    Private API (no public switch exists; `do_not_convert` is per function, and these are
    Keras's): TensorFlow reads `CONVERSION_RULES` on every conversion decision. Idempotent.
    """
    if not any(rule.matches("tf_keras") for rule in autograph_config.CONVERSION_RULES):
        autograph_config.CONVERSION_RULES = (
            autograph_config.DoNotConvert("tf_keras"),
            *autograph_config.CONVERSION_RULES,
        )


keep_autograph_out_of_keras()


class VariablesBeforeTracing:
    """Mixin for a Keras model with `_build_if_needed()` (an eager call on a dummy batch that
    creates its layers' variables): runs it, and builds the optimizer's slots, before
    `make_train_function` traces the train step, so that step is traced once.

    A layer whose trainable variables only the train step creates would not get optimizer slots;
    tests/model/test_tracing.py fits every model type (and CCL4Rec with every optional part) and
    checks one trace and the same weights as Keras's own path from the same initial weights. The
    Trainer built its models eagerly already (their parameter counts), so its seeded runs are
    unchanged; a model fit without that build now creates its variables in call order, not in
    the train step's: other (equally random) seeded initial weights.
    """

    def make_train_function(self, force=False):
        if self.train_function is None or force:
            self._build_if_needed()
            if isinstance(self.optimizer, tf.keras.optimizers.Optimizer):  # has build(var_list)
                self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)
