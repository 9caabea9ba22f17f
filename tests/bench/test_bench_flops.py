"""The analytic FLOP formulas (tf_ccl4rec/bench/flops.py) against TensorFlow's own count.

TensorFlow's profiler prices MatMul / BatchMatMul nodes of a fully shaped traced graph
(2·m·k·n each); flops.py counts the same products by formula. Einsum nodes have no registered
price, so the traced model must hold none (the augmented sequences are gathered, not built by a
one-hot product).
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.profiler.internal import flops_registry  # noqa: F401 (registers prices)

from tf_ccl4rec import features as F
from tf_ccl4rec.bench import flops
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.model import CCL4RecModel

TOLERANCE = 0.01  # relative; the formulas are exact for the products they count


def _graph_matmul_flops(graph):
    """(priced MatMul FLOPs, Einsum count) of `graph` and of the functions it calls (the model's
    XLA-compiled pieces are nested tf.functions)."""
    total = einsums = 0
    for op in graph.get_operations():
        if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "BatchMatMul"):
            # The price TensorFlow's profiler gives the node (flops_registry: 2·m·k·n).
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        elif op.type == "Einsum":
            einsums += 1
        elif "f" in op.node_def.attr:
            called = graph._functions[op.node_def.attr["f"].func.name].graph
            flops, inner = _graph_matmul_flops(called)
            total, einsums = total + flops, einsums + inner
    return total, einsums


def _tf_matmul_flops(fn, inputs):
    concrete = tf.function(fn).get_concrete_function(
        {k: tf.TensorSpec(v.shape, v.dtype) for k, v in inputs.items()}
    )
    return _graph_matmul_flops(concrete.graph)


def _batch(cfg, b, rng):
    return {
        F.MODEL_CLICK_HISTORY: tf.constant(
            rng.integers(1, cfg.vocab_size + 1, (b, cfg.max_history))
        ),
        F.MODEL_TARGET: tf.constant(rng.integers(1, cfg.vocab_size + 1, b)),
        F.MODEL_LABEL: tf.constant(rng.integers(0, 2, b).astype(np.float32)),
        F.MODEL_USER: tf.constant(np.arange(b) // 2),
    }


@pytest.mark.parametrize("representation", ["id", "both"])
def test_ccl4rec_forward_formulas_match_tensorflow(representation):
    cfg = CCL4RecConfig(
        vocab_size=50, max_history=12, embedding_dim=8, units=6, mlp_units=(10, 4),
        num_substitutes=20, num_positives=3, num_negatives=2, video_representation=representation,
        content_feature_dim=5 if representation == "both" else 0,
    )  # fmt: skip
    content = np.random.default_rng(0).normal(size=(cfg.num_embeddings, 5)).astype(np.float32)
    model = CCL4RecModel(cfg, content if representation == "both" else None)
    rng = np.random.default_rng(1)
    batch = _batch(cfg, 4, rng)
    model(batch)
    counted, _ = _tf_matmul_flops(lambda x: model(x), batch)
    expected = flops.ccl4rec(cfg, 4, training=False).forward
    print(f"inference: TensorFlow {counted}, formula {expected}")
    assert counted == pytest.approx(expected, rel=TOLERANCE)

    counted, einsums = _tf_matmul_flops(lambda x: model.compute_loss(x, training=True), batch)
    count = flops.ccl4rec(cfg, 4, training=True)
    print(f"training forward: TensorFlow {counted} (+{einsums} einsums), formula {count.forward}")
    assert einsums == 0  # an unpriced product would hide from the comparison
    assert counted == pytest.approx(count.forward, rel=TOLERANCE)
    # The augmented encoders project nothing: Eq 1 and the pooling per sample, B · S of them.
    augmented = count.terms["encode_augmented (Np + Nn sequences)"][0]
    assert augmented == 4 * (3 + 2) * (2 * 12 * 6 * 12 + 2 * 12 * 12 + 2 * 12 * 8 + 2 * 8 * 6)


def test_train_step_is_three_forwards_plus_the_stop_gradient_part():
    cfg = CCL4RecConfig(vocab_size=50, max_history=12, embedding_dim=8, num_substitutes=20)
    count = flops.ccl4rec(cfg, 4, training=True)
    no_grad = sum(f for f, g in count.terms.values() if not g)
    assert no_grad > 0
    assert count.train_step == 3 * (count.forward - no_grad) + no_grad
    ce_only = CCL4RecConfig(
        vocab_size=50, max_history=12, embedding_dim=8, num_substitutes=20, use_ccl=False,
        use_ccl_pos=False, use_ccl_neg=False, use_ce_pos=False, use_ce_neg=False, use_cui=False,
    )  # fmt: skip
    assert flops.ccl4rec(ce_only, 4).train_step == 3 * flops.ccl4rec(cfg, 4, False).forward
