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


def _graph_matmul_flops(graph, data_rows):
    """(priced MatMul FLOPs, Einsum count, MatMuls with data-dependent rows) of `graph` and of
    the functions it calls (the model's XLA-compiled pieces are nested tf.functions).

    A 2-D MatMul whose left operand has an unknown row count (Eq 3 on the distinct history
    items: the count depends on the ids) is priced 2·data_rows·k·n by hand; TensorFlow's price
    needs a fully defined shape."""
    total = einsums = by_hand = 0
    for op in graph.get_operations():
        if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "BatchMatMul"):
            left, right = (x.shape for x in op.inputs)
            if op.type == "MatMul" and left[0] is None and left[1:].is_fully_defined():
                transpose_b = op.node_def.attr["transpose_b"].b
                assert not op.node_def.attr["transpose_a"].b
                total += 2 * data_rows * left[1] * (right[0] if transpose_b else right[1])
                by_hand += 1
                continue
            # The price TensorFlow's profiler gives the node (flops_registry: 2·m·k·n).
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        elif op.type == "Einsum":
            einsums += 1
        elif "f" in op.node_def.attr:
            called = graph._functions[op.node_def.attr["f"].func.name].graph
            flops, inner, hand = _graph_matmul_flops(called, data_rows)
            total, einsums, by_hand = total + flops, einsums + inner, by_hand + hand
    return total, einsums, by_hand


def _tf_matmul_flops(fn, inputs, data_rows=0):
    concrete = tf.function(fn).get_concrete_function(
        {k: tf.TensorSpec(v.shape, v.dtype) for k, v in inputs.items()}
    )
    return _graph_matmul_flops(concrete.graph, data_rows)


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
    counted, _, by_hand = _tf_matmul_flops(lambda x: model(x), batch)
    expected = flops.ccl4rec(cfg, 4, training=False).forward
    print(f"inference: TensorFlow {counted}, formula {expected}")
    assert by_hand == 0
    assert counted == pytest.approx(expected, rel=TOLERANCE)

    # Eq 3 runs on the distinct history items; this batch repeats some (4 x 12 draws of 50 ids).
    distinct = len(np.unique(batch[F.MODEL_CLICK_HISTORY].numpy()))
    assert distinct < 4 * 12
    counted, einsums, by_hand = _tf_matmul_flops(
        lambda x: model.compute_loss(x, training=True), batch, distinct
    )
    count = flops.ccl4rec(cfg, 4, training=True, relatedness_rows=distinct)
    print(f"training forward: TensorFlow {counted} (+{einsums} einsums), formula {count.forward}")
    assert einsums == 0  # an unpriced product would hide from the comparison
    assert by_hand == 1  # Eq 3, the only product whose size depends on the ids
    assert counted == pytest.approx(count.forward, rel=TOLERANCE)
    assert count.forward < flops.ccl4rec(cfg, 4, training=True).forward  # B · N rows
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
