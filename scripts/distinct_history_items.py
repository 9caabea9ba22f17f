"""How many rows Eq 3 computes per batch on real examples: distinct click-history items / (B·N).

CCL4Rec computes the relatedness of Eq 3 once per distinct item of a batch's click histories
(`augmentation.distinct_rows`; padding counts as one item). This reads the training split that
CCL4RecExampleGen wrote and forms batches as the Trainer does (`batching.group_by_user`: windows
of `rows_per_user` consecutive exposures of one user, windows shuffled, their rows cut into
batches), and, for comparison, batches of rows shuffled one by one.

  python scripts/distinct_history_items.py ROOT/CCL4RecExampleGen/examples/1/Split-train \
      --history 50 --batch 32
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402

from tf_ccl4rec import features as F  # noqa: E402
from tf_ccl4rec.training_settings import TrainerSettings  # noqa: E402

PAD = b""  # stands for the padding id: a history shorter than N is padded


def read_histories(split_dir: str) -> dict:
    """user id -> [(timestamp, click history)] from the split's gzipped TFRecords."""
    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    if not files:
        raise SystemExit(f"no *.gz TFRecord files in {split_dir}")
    by_user = collections.defaultdict(list)
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        user = feature[F.USER_ID].bytes_list.value[0]
        by_user[user].append(
            (feature[F.TIMESTAMP].int64_list.value[0], feature[F.CLICK_HISTORY].bytes_list.value)
        )
    return by_user


def distinct_share(batch, history: int) -> float:
    items = set()
    for clicks in batch:
        items.update(clicks[-history:])
        if len(clicks) < history:
            items.add(PAD)
    return len(items) / (len(batch) * history)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split_dir", help="a Split-train directory of CCL4RecExampleGen")
    parser.add_argument("--history", type=int, default=50, help="N, the model's max_history")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rows-per-user", type=int, default=TrainerSettings.rows_per_user)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    by_user = read_histories(args.split_dir)
    windows = []
    for rows in by_user.values():
        rows.sort(key=lambda row: row[0])
        clicks = [h for _, h in rows]
        windows += [
            clicks[i : i + args.rows_per_user] for i in range(0, len(clicks), args.rows_per_user)
        ]
    rng = np.random.default_rng(args.seed)

    def shares(stream):
        cut = range(0, len(stream) - args.batch + 1, args.batch)
        return [distinct_share(stream[i : i + args.batch], args.history) for i in cut]

    # The Trainer re-batches the shuffled windows' rows into batches of `batch` rows.
    trainer = shares([h for k in rng.permutation(len(windows)) for h in windows[k]])
    rows = [h for w in windows for h in w]
    shuffled = shares([rows[k] for k in rng.permutation(len(rows))])
    print(f"{len(by_user)} users, {len(rows)} rows; history {args.history}, batch {args.batch}")
    for name, shares in (
        ("the Trainer's batches", trainer),
        ("rows shuffled one by one", shuffled),
    ):
        p10, p90 = np.percentile(shares, [10, 90])
        print(f"distinct items / (B·N), {name}: mean {np.mean(shares):.3f} "
              f"(p10 {p10:.3f}, p90 {p90:.3f}; {len(shares)} batches)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
