"""The experiments' data, prepared once per raw-log directory and cached.

Same path as the pipeline: the Beam example builder (`tf_ccl4rec.data.cli.run_examples`, i.e.
BuildExamples + WriteExamples on DirectRunner), TFT analyze on the train split with the pipeline's
`preprocessing_fn` (`tf_ccl4rec.testing.analyze`), and the eval split transformed by the exported
transform graph (`TFTransformOutput.transform_features_layer`, what serving applies), which keeps
eval rows in order so they can be joined back to the raw log and its ground truth.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import pickle
import time

import numpy as np
import pandas as pd

from tf_ccl4rec import features as F
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME

CACHE_VERSION = 3  # 2: timestamps and history counts; 3: the recent click count
SCALAR_MODEL_FEATURES = (F.MODEL_TARGET, F.MODEL_USER, F.MODEL_LABEL)


@dataclasses.dataclass
class Prepared:
    """Model-ready columns of both splits plus what the ground-truth metrics need.

    Attributes:
      data_dir: The raw-log directory.
      transform_dir: TFT output directory (load with `tft_output()`).
      max_history: History length of the examples and of Transform.
      train: Transformed train columns (MODEL_* name -> numpy array, rows first).
      eval: Transformed eval columns, row-aligned with `eval_keys`.
      eval_keys: DataFrame of the eval rows' raw user_id, video_id, timestamp, click.
      content_dim: Width of the video-feature table (0 when the log has none).
      truth: Ground truth per eval row (true_click_prob; NaN where unknown), or None.
      alpha_rows: Eval row of each user's last eval exposure whose click history was mapped back
        to raw exposures (int [U]), or None.
      alpha_noise: Per entry of `alpha_rows`, is_noise of each click-history item (list of int8
        arrays, history order).
      alpha_skipped: Users whose history could not be matched to raw exposures.
      stats: Sizes and timings of the preparation.
    """

    data_dir: str
    transform_dir: str
    max_history: int
    train: dict
    eval: dict
    eval_keys: pd.DataFrame
    content_dim: int
    truth: np.ndarray | None
    alpha_rows: np.ndarray | None
    alpha_noise: list | None
    alpha_skipped: int
    stats: dict

    def tft_output(self):
        import tensorflow_transform as tft

        return tft.TFTransformOutput(self.transform_dir)


def _read_serialized(examples_dir: str, split: str) -> list[bytes]:
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(examples_dir, f"Split-{split}", "*.gz")))
    if not files:
        raise FileNotFoundError(f"no {split} examples under {examples_dir}")
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _instance(decoded: dict, spec: dict) -> dict:
    """A decoded tf.Example as the instance dict TFT's Beam implementation takes."""
    import tensorflow as tf

    row = {}
    for name, feature_spec in spec.items():
        default = [b""] if isinstance(feature_spec, tf.io.FixedLenFeature) else []
        row[name] = decoded.get(name, default)
    return row


def _columns(rows: list[dict]) -> dict:
    cols = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
    return {k: v.reshape(-1) if k in SCALAR_MODEL_FEATURES else v for k, v in cols.items()}


def _transform_eval(tft_output, serialized: list[bytes], spec: dict, batch: int = 2048) -> dict:
    import tensorflow as tf

    layer = tft_output.transform_features_layer()
    parts = []
    for start in range(0, len(serialized), batch):
        parsed = tf.io.parse_example(tf.constant(serialized[start : start + batch]), spec)
        out = layer(parsed)
        parts.append({k: v.numpy() for k, v in out.items()})
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {k: v.reshape(-1) if k in SCALAR_MODEL_FEATURES else v for k, v in cols.items()}


def eval_truth(eval_keys: pd.DataFrame, ground_truth: pd.DataFrame) -> np.ndarray:
    """true_click_prob of each eval row (joined on user, video, timestamp; NaN if absent).

    Args:
      eval_keys: user_id, video_id, timestamp columns of the eval rows.
      ground_truth: `ccl4rec data synth`'s ground_truth.csv.

    Returns:
      float64 [len(eval_keys)].
    """
    from tf_ccl4rec.data import synth

    keys = [F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP]
    gt = ground_truth[keys + [synth.TRUE_CLICK_PROB]].drop_duplicates(keys)
    gt = gt.astype({F.RAW_USER_ID: str, F.RAW_VIDEO_ID: str})
    joined = eval_keys[keys].merge(gt, on=keys, how="left")
    return joined[synth.TRUE_CLICK_PROB].to_numpy(dtype=np.float64)


def history_noise(
    user_truth: pd.DataFrame, timestamp: int, history: list[str], max_history: int
) -> np.ndarray | None:
    """is_noise of each item of a click history, by mapping it back to the user's raw clicks.

    The example builder's click history at time t is the user's clicked exposures with timestamp
    strictly before t, oldest -> newest, cut to the newest `max_history`.

    Args:
      user_truth: One user's ground-truth rows (video_id, timestamp, click, is_noise).
      timestamp: The exposure's timestamp t.
      history: The example's click-history video ids (oldest -> newest).
      max_history: The builder's max_history.

    Returns:
      int8 [len(history)], or None when the reconstructed ids differ from `history` (e.g. ties).
    """
    from tf_ccl4rec.data import synth

    clicks = user_truth[(user_truth[F.RAW_CLICK] == 1) & (user_truth[F.RAW_TIMESTAMP] < timestamp)]
    clicks = clicks.sort_values(F.RAW_TIMESTAMP, kind="stable").tail(max_history)
    if clicks[F.RAW_VIDEO_ID].astype(str).tolist() != list(history):
        return None
    return clicks[synth.IS_NOISE].to_numpy(dtype=np.int8)


def _alpha_targets(eval_keys, eval_histories, ground_truth, max_history):
    """Each user's last eval exposure and the is_noise of its click history."""
    rows, noise, skipped = [], [], 0
    truth_by_user = {
        u: g for u, g in ground_truth.astype({F.RAW_USER_ID: str}).groupby(F.RAW_USER_ID)
    }
    last = eval_keys.reset_index().sort_values(F.RAW_TIMESTAMP).groupby(F.RAW_USER_ID).tail(1)
    for row, user, ts in zip(
        last["index"], last[F.RAW_USER_ID], last[F.RAW_TIMESTAMP], strict=True
    ):
        history = eval_histories[row]
        if not history:
            continue
        mapped = history_noise(
            truth_by_user.get(user, ground_truth.iloc[:0]), ts, history, max_history
        )
        if mapped is None:
            skipped += 1
            continue
        rows.append(row)
        noise.append(mapped)
    return np.asarray(rows, dtype=np.int64), noise, skipped


def prepare(data_dir: str, cache_dir: str, max_history: int = 50, progress=print) -> Prepared:
    """Builds (or loads from `cache_dir`) the experiments' data for a raw-log directory.

    Args:
      data_dir: Raw-log directory (as `ccl4rec data synth` writes it; ground_truth.csv optional).
      cache_dir: Where examples, the Transform output and the arrays are cached; reused while
        the raw log's fingerprint and `max_history` are unchanged.
      max_history: History length (examples and Transform).
      progress: callable(str) for progress lines.

    Returns:
      Prepared.
    """
    from tf_ccl4rec.data import raw_log, synth

    if not os.path.isfile(os.path.join(data_dir, F.RAW_INTERACTIONS_FILE)):
        raise FileNotFoundError(
            f"--data {data_dir!r} has no {F.RAW_INTERACTIONS_FILE}; write one with "
            "`ccl4rec data synth --out DIR`"
        )
    key = {"fingerprint": raw_log.fingerprint(data_dir), "max_history": int(max_history),
           "version": CACHE_VERSION}  # fmt: skip
    meta_path = os.path.join(cache_dir, "prepared.json")
    arrays_path = os.path.join(cache_dir, "prepared.pkl")
    if os.path.exists(meta_path) and os.path.exists(arrays_path):
        with open(meta_path) as f:
            if json.load(f) == key:
                with open(arrays_path, "rb") as f:
                    prepared = pickle.load(f)
                progress(f"data: reusing the prepared data in {cache_dir}")
                return prepared
    from tf_ccl4rec.data import cli as data_cli
    from tf_ccl4rec.data.examples import ExampleOptions, decode_example
    from tf_ccl4rec.testing import analyze, raw_feature_spec

    t0 = time.perf_counter()
    os.makedirs(cache_dir, exist_ok=True)
    examples_dir = os.path.join(cache_dir, "examples")
    data_cli.run_examples(  # overwrite: a stale cache entry is rebuilt whole
        data_dir,
        examples_dir,
        ExampleOptions(max_history=max_history),
        progress=progress,
        overwrite=True,
    )
    t_examples = time.perf_counter() - t0
    spec = raw_feature_spec()
    train_serialized = _read_serialized(examples_dir, "train")
    eval_serialized = _read_serialized(examples_dir, "eval")
    progress(
        f"data: {len(train_serialized)} train / {len(eval_serialized)} eval examples "
        f"({t_examples:.0f} s); TFT analyze on train"
    )
    t1 = time.perf_counter()
    transform_dir = os.path.join(cache_dir, "transform")
    train_rows = [_instance(decode_example(s), spec) for s in train_serialized]
    tft_output, transformed = analyze(train_rows, transform_dir, {"max_history": max_history})
    train = _columns(transformed)
    decoded_eval = [decode_example(s) for s in eval_serialized]
    evaluation = _transform_eval(tft_output, eval_serialized, spec)
    t_transform = time.perf_counter() - t1
    eval_keys = pd.DataFrame(
        {
            F.RAW_USER_ID: [d[F.USER_ID][0].decode() for d in decoded_eval],
            F.RAW_VIDEO_ID: [d[F.VIDEO_ID][0].decode() for d in decoded_eval],
            F.RAW_TIMESTAMP: [int(d[F.TIMESTAMP][0]) for d in decoded_eval],
            F.RAW_CLICK: [int(d[F.LABEL][0]) for d in decoded_eval],
        }
    )
    histories = [[v.decode() for v in d.get(F.CLICK_HISTORY, [])] for d in decoded_eval]
    features = raw_log.load_video_features(data_dir)
    truth_path = os.path.join(data_dir, synth.GROUND_TRUTH_FILE)
    truth = alpha_rows = alpha_noise = None
    skipped = 0
    if os.path.exists(truth_path):
        ground_truth = pd.read_csv(truth_path, dtype={F.RAW_USER_ID: str, F.RAW_VIDEO_ID: str})
        truth = eval_truth(eval_keys, ground_truth)
        alpha_rows, alpha_noise, skipped = _alpha_targets(
            eval_keys, histories, ground_truth, max_history
        )
    else:
        progress(f"data: no {synth.GROUND_TRUTH_FILE}: oracle and alpha-noise AUC not computed")
    prepared = Prepared(
        data_dir=os.path.abspath(data_dir),
        transform_dir=transform_dir,
        max_history=int(max_history),
        train=train,
        eval=evaluation,
        eval_keys=eval_keys,
        content_dim=0 if features is None else int(features[1].shape[1]),
        truth=truth,
        alpha_rows=alpha_rows,
        alpha_noise=alpha_noise,
        alpha_skipped=skipped,
        stats={
            "train_rows": len(train_serialized),
            "eval_rows": len(eval_serialized),
            "users": int(eval_keys[F.RAW_USER_ID].nunique()),
            "vocab_size": int(tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME)),
            "examples_seconds": round(t_examples, 1),
            "transform_seconds": round(t_transform, 1),
        },
    )
    with open(arrays_path, "wb") as f:
        pickle.dump(prepared, f)
    with open(meta_path, "w") as f:
        json.dump(key, f)
    progress(
        f"data: prepared in {time.perf_counter() - t0:.0f} s "
        f"(analyze+transform {t_transform:.0f} s); cached in {cache_dir}"
    )
    return prepared
