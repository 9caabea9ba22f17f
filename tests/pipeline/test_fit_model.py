"""`trainer.fit_model`: counts read every training row once; the refit retrains on every row."""

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.trainer import TrainingData, fit_model
from tf_ccl4rec.training_settings import TrainerSettings

VOCAB, HISTORY, USERS, ROWS_PER_USER = 20, 6, 12, 20


def _rows():
    """12 users x 20 exposures at t = 0..19; histories are the user's earlier clicks/non-clicks."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(USERS):
        clicks, nonclicks = [], []
        for t in range(ROWS_PER_USER):
            video = int(rng.integers(1, VOCAB + 1))
            label = int(rng.random() < (0.8 if video % 2 else 0.2))
            pad = lambda ids: (ids[-HISTORY:] + [0] * HISTORY)[:HISTORY]  # noqa: E731
            rows.append({
                F.MODEL_USER: user, F.MODEL_TIMESTAMP: t, F.MODEL_TARGET: video,
                F.MODEL_LABEL: label, F.MODEL_CLICK_HISTORY: pad(clicks),
                F.MODEL_NONCLICK_HISTORY: pad(nonclicks),
                F.MODEL_CLICK_COUNT: float(len(clicks)),
                F.MODEL_NONCLICK_COUNT: float(len(nonclicks)),
            })  # fmt: skip
            (clicks if label else nonclicks).append(video)
    columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in (F.MODEL_USER, F.MODEL_TIMESTAMP, F.MODEL_TARGET, F.MODEL_LABEL):
        columns[k] = columns[k].astype(np.int64)
    columns[F.MODEL_CLICK_HISTORY] = columns[F.MODEL_CLICK_HISTORY].astype(np.int64)
    columns[F.MODEL_NONCLICK_HISTORY] = columns[F.MODEL_NONCLICK_HISTORY].astype(np.int64)
    columns[F.MODEL_CLICK_COUNT] = columns[F.MODEL_CLICK_COUNT].astype(np.float32)
    columns[F.MODEL_NONCLICK_COUNT] = columns[F.MODEL_NONCLICK_COUNT].astype(np.float32)
    return columns


def _fit(model_type, **settings):
    columns = _rows()
    # validation_fraction 0.2: each user's latest 4 of 20 rows -> 48 validation, 192 train rows.
    data = TrainingData(tf.data.Dataset.from_tensor_slices(columns), 0.2)
    # CE only: the loop is under test here, not the losses.
    config = CCL4RecConfig.from_preset(
        "default", vocab_size=VOCAB, max_history=HISTORY, embedding_dim=4, mlp_units=[4],
        num_substitutes=5, num_positives=2, num_negatives=2, batch_size=16,
        video_representation="id", learning_rate=0.01, use_ccl=False, use_ccl_pos=False,
        use_ccl_neg=False, use_ce_pos=False,
    )  # fmt: skip
    settings = TrainerSettings(model_type=model_type, max_epochs=3, **settings)
    fit = fit_model(settings, config, None, data, tf.distribute.get_strategy())
    return fit, data, columns


def test_a_count_reads_every_training_row_once_validation_rows_included():
    fit, data, columns = _fit("user_item_rate")
    assert (data.num_rows, data.num_validation) == (240, 48)
    # Exactly the per-video exposures and clicks of all 240 rows (not of the 192 train rows,
    # and not a sample of a repeated stream).
    expected = np.bincount(columns[F.MODEL_TARGET], minlength=VOCAB + 2)
    clicks = np.bincount(columns[F.MODEL_TARGET], columns[F.MODEL_LABEL], minlength=VOCAB + 2)
    np.testing.assert_array_equal(fit.model.exposures.numpy()[: VOCAB + 2], expected)
    np.testing.assert_allclose(fit.model.clicks.numpy()[: VOCAB + 2], clicks)
    assert fit.refit_epochs == 0 and fit.best_epoch == 0


def test_refit_trains_a_fresh_model_on_every_row_for_the_best_number_of_epochs():
    fit, data, _ = _fit("ccl4rec")
    assert 1 <= fit.best_epoch <= fit.epochs <= 3
    assert fit.refit_epochs == fit.best_epoch
    # 192 train rows / batch 16 = 12 steps per epoch; the refit keeps the steps per row:
    # round(12 * 240 / 192) = 15 steps per epoch, and its optimizer starts from 0.
    assert fit.steps_per_epoch == 12
    assert int(fit.model.optimizer.iterations.numpy()) == 15 * fit.refit_epochs


def test_no_refit_exports_the_early_stopped_model():
    fit, _, _ = _fit("ccl4rec", refit=False)
    assert fit.refit_epochs == 0
    assert int(fit.model.optimizer.iterations.numpy()) == 12 * fit.epochs


def test_epoch_lines_time_each_epoch_and_the_total(monkeypatch, capsys):
    """The first epoch includes tracing: the lines give each epoch's seconds and the total."""
    from tf_ccl4rec import trainer

    clock = iter([100.0, 100.0, 125.0, 125.0, 131.0])  # start; epoch 1 25 s; epoch 2 6 s
    monkeypatch.setattr(trainer.time, "time", lambda: next(clock))
    lines = trainer.RefitLines(2)
    for epoch in range(2):
        lines.on_epoch_begin(epoch)
        lines.on_epoch_end(epoch, {"loss": 1.0, "auc": 0.5})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("trainer: refit epoch 1/2 (25 s, 25 s in all): loss 1.0000")
    assert out[1].startswith("trainer: refit epoch 2/2 (6 s, 31 s in all): loss 1.0000")


def test_the_first_training_batch_reads_about_one_pass_of_a_small_log():
    """The window shuffle buffer holds at most one pass of windows: with the old fixed 1024
    windows (4,096 rows) the first batch of this 240-row log waited for 22 passes of it."""
    read = [0]

    def tick(user):
        read[0] += 1
        return user

    rows = tf.data.Dataset.from_tensor_slices(_rows()).map(
        lambda r: {
            **r,
            F.MODEL_USER: tf.ensure_shape(tf.numpy_function(tick, [r[F.MODEL_USER]], tf.int64), []),
        }
    )
    data = TrainingData(rows, 0.2)
    before = read[0]
    batch = next(iter(data.train(batch_size=16, rows_per_user=4, seed=0)))
    passes = (read[0] - before) / data.num_rows
    # One pass fills the row shuffle, ~one more the 48 windows (users' leftovers wait for the
    # next pass); prefetching a few batches reads a few more rows.
    print(f"rows read before the first batch: {passes:.2f} passes")
    assert 1 <= passes <= 3, passes
    assert batch[F.MODEL_LABEL].shape[0] == 16
