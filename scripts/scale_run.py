"""Issue 14's scale run: a two-stage export over a 1.7 M-video catalogue from a synth log.

The TFX pipeline does not fit this machine's time at this size (its Transform, DirectRunner,
analyses about 530 raw rows/s here, so 2.6 M rows take well over an hour), so this takes the
shortest route that still runs the project's own code for every serving part:

1. reads the raw log of `ccl4rec data synth --cover-videos` (every video exposed at least once);
2. the video vocabulary: every video id of the log, in TFT's order (count descending, then id
   descending); counts are of exposures (the pipeline's also count history occurrences, which
   changes the order, not the set);
3. the Transform graph: the project's `preprocessing_fn` analysed by TFT on a small sample of the
   log (`tf_ccl4rec.testing.analyze`), its vocabulary asset then replaced by the full one (the
   lookup table reads the asset when loaded; this script checks the mapping of the first, last
   and an unknown id through the loaded Transform layer);
4. training rows of the first --train-users users (histories of earlier clicks / non-clicks, the
   counts the example builder writes), model indices from the same vocabulary; a CCL4Rec of the
   default preset's sizes (ids, history 50, retrieval term on) trained --train-steps steps;
5. `export_serving_model` with the two-stage recommend, once per --indexes.

Prints vocabulary size, embedding table size, export size on disk and the time of each stage.

  PYTHONPATH=. python scripts/scale_run.py --raw /work/scale_run/raw --out /work/scale_run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402

from tf_ccl4rec import features as F  # noqa: E402
from tf_ccl4rec.config import CCL4RecConfig  # noqa: E402
from tf_ccl4rec.export import export_serving_model  # noqa: E402
from tf_ccl4rec.model import CCL4RecModel  # noqa: E402
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME  # noqa: E402
from tf_ccl4rec.testing import analyze, raw_feature_spec  # noqa: E402

HISTORY = 50


def stage(name, start):
    print(f"scale_run: {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return time.perf_counter()


def vocabulary(log: pd.DataFrame) -> list[str]:
    """Every video id of the log in tft.vocabulary's order: count descending, then id descending."""
    counts = log[F.RAW_VIDEO_ID].value_counts()
    frame = pd.DataFrame({"id": counts.index.astype(str), "count": counts.to_numpy()})
    return frame.sort_values(["count", "id"], ascending=False)["id"].tolist()


def sample_rows(log: pd.DataFrame, n: int) -> list[dict]:
    """Raw example dicts (TFT's instance format) of the log's first n exposures, histories empty."""
    rows = []
    for name, spec in raw_feature_spec().items():
        fixed = isinstance(spec, tf.io.FixedLenFeature)
        rows.append((name, ([b""] if spec.dtype == tf.string else [0]) if fixed else []))
    template = dict(rows)
    head = log.head(n)
    return [
        {**template, F.VIDEO_ID: [v.encode()], F.USER_ID: [u.encode()], F.LABEL: [int(c)],
         F.TIMESTAMP: [int(t)]}
        for v, u, c, t in zip(head[F.RAW_VIDEO_ID], head[F.RAW_USER_ID], head[F.RAW_CLICK],
                              head[F.RAW_TIMESTAMP], strict=True)
    ]  # fmt: skip


def transform_output(log: pd.DataFrame, vocab: list[str], transform_dir: str):
    """TFT's transform graph (traced on a sample) with the full vocabulary as its asset."""
    import tensorflow_transform as tft

    analyze(sample_rows(log, 500), transform_dir)
    asset = os.path.join(transform_dir, "transform_fn", "assets", VIDEO_VOCAB_NAME)
    if not os.path.exists(asset):
        raise RuntimeError(f"no vocabulary asset at {asset}")
    with open(asset, "w") as f:
        f.write("\n".join(vocab) + "\n")
    output = tft.TFTransformOutput(transform_dir)
    assert output.vocabulary_size_by_name(VIDEO_VOCAB_NAME) == len(vocab)
    return output


def check_mapping(tft_output, vocab):
    """The loaded Transform layer maps vocab[i] to i + 1 and an unknown id to len(vocab) + 1."""
    layer = tft_output.transform_features_layer()
    ids = [vocab[0], vocab[len(vocab) // 2], vocab[-1], "never-seen-id"]
    raw = {}
    for name, spec in raw_feature_spec().items():
        if isinstance(spec, tf.io.FixedLenFeature):
            raw[name] = tf.fill([len(ids), 1], tf.constant(b"" if spec.dtype == tf.string else 0,
                                                           spec.dtype))  # fmt: skip
        else:
            raw[name] = tf.sparse.SparseTensor(
                tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype), [len(ids), 0]
            )
    raw[F.VIDEO_ID] = tf.constant([[i] for i in ids])
    got = layer(raw)[F.MODEL_TARGET].numpy().tolist()
    want = [1, len(vocab) // 2 + 1, len(vocab), len(vocab) + 1]
    if got != want:
        raise RuntimeError(f"Transform maps {ids} to {got}, expected {want}")
    print(f"scale_run: Transform maps first/middle/last/unknown ids to {got}", flush=True)


def _tail_padded(items: list[int]) -> list[int]:
    tail = items[-HISTORY:]
    return tail + [F.PAD_ID] * (HISTORY - len(tail))


def training_rows(log: pd.DataFrame, index: dict, users: int) -> dict:
    """Model features of the first `users` users' exposures (the log is sorted by user, time)."""
    chosen = log[F.RAW_USER_ID].drop_duplicates().head(users)
    part = log[log[F.RAW_USER_ID].isin(set(chosen))]
    columns = {k: [] for k in (F.MODEL_TARGET, F.MODEL_CLICK_HISTORY, F.MODEL_NONCLICK_HISTORY,
                               F.MODEL_CLICK_COUNT, F.MODEL_NONCLICK_COUNT,
                               F.MODEL_RECENT_CLICK_COUNT, F.MODEL_LABEL, F.MODEL_USER)}  # fmt: skip
    for user_number, (_, rows) in enumerate(part.groupby(F.RAW_USER_ID, sort=False)):
        clicks, nonclicks, recent = [], [], []
        for video, click in zip(rows[F.RAW_VIDEO_ID], rows[F.RAW_CLICK], strict=True):
            target = index[video]
            columns[F.MODEL_TARGET].append(target)
            columns[F.MODEL_CLICK_HISTORY].append(_tail_padded(clicks))
            columns[F.MODEL_NONCLICK_HISTORY].append(_tail_padded(nonclicks))
            columns[F.MODEL_CLICK_COUNT].append(len(clicks))
            columns[F.MODEL_NONCLICK_COUNT].append(len(nonclicks))
            columns[F.MODEL_RECENT_CLICK_COUNT].append(sum(recent[-F.RECENT_WINDOW :]))
            columns[F.MODEL_LABEL].append(int(click))
            columns[F.MODEL_USER].append(user_number)
            (clicks if click else nonclicks).append(target)
            recent.append(int(click))
    dtypes = {F.MODEL_CLICK_COUNT: np.float32, F.MODEL_NONCLICK_COUNT: np.float32,
              F.MODEL_RECENT_CLICK_COUNT: np.float32, F.MODEL_LABEL: np.float32}  # fmt: skip
    return {k: np.asarray(v, dtypes.get(k, np.int64)) for k, v in columns.items()}


def train(vocab_size: int, rows: dict, steps: int, candidates: int, leaves_searched: float):
    config = CCL4RecConfig.from_preset(
        "default",
        vocab_size=vocab_size,
        max_history=HISTORY,
        video_representation="id",
        category_statistics=False,
        retrieval_weight=1.0,
        retrieval_candidates=candidates,
        retrieval_leaves_searched=leaves_searched,
    )
    tf.keras.utils.set_random_seed(0)
    model = CCL4RecModel(config)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    data = tf.data.Dataset.from_tensor_slices(rows).shuffle(100_000, seed=0).repeat()
    history = model.fit(
        data.batch(config.batch_size), steps_per_epoch=steps, epochs=1, verbose=0
    ).history
    print(f"scale_run: trained {steps} steps of {config.batch_size}: {history}", flush=True)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="raw-log directory (data synth --out)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-users", type=int, default=2000)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=1000, help="retrieval_candidates N")
    parser.add_argument("--indexes", default="brute_force,scann")
    parser.add_argument(
        "--leaves-searched", type=float, default=CCL4RecConfig.retrieval_leaves_searched,
        help="scann: share of the leaves searched",
    )  # fmt: skip
    args = parser.parse_args(argv)

    t = time.perf_counter()
    log = pd.read_csv(
        os.path.join(args.raw, F.RAW_INTERACTIONS_FILE),
        dtype={F.RAW_USER_ID: str, F.RAW_VIDEO_ID: str},
        usecols=[F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK],
    )
    print(f"scale_run: {len(log)} exposures, {log[F.RAW_USER_ID].nunique()} users", flush=True)
    t = stage("read log", t)
    vocab = vocabulary(log)
    t = stage(f"vocabulary of {len(vocab)} videos", t)
    tft_output = transform_output(log, vocab, os.path.join(args.out, "transform"))
    check_mapping(tft_output, vocab)
    t = stage("transform graph", t)
    index = {v: i + 1 for i, v in enumerate(vocab)}
    rows = training_rows(log, index, args.train_users)
    t = stage(f"{len(rows[F.MODEL_TARGET])} training rows of {args.train_users} users", t)
    model = train(len(vocab), rows, args.train_steps, args.candidates, args.leaves_searched)
    t = stage("training", t)
    tables = [v for v in model.variables if v.shape.rank == 2 and v.shape[0] >= len(vocab)]
    for v in tables:
        print(f"scale_run: per-video table {v.name} {v.shape.as_list()} "
              f"{v.shape.num_elements() * v.dtype.size / 2**20:.0f} MiB", flush=True)  # fmt: skip
    for name in args.indexes.split(","):
        path = os.path.join(args.out, "push", name, "ccl4rec", "1")
        export_serving_model(model, tft_output, path, args.candidates, name)
        size = subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0]
        t = stage(f"export {name} ({int(size) / 2**20:.0f} MiB on disk) at {path}", t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
