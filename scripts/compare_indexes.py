"""How close an approximate (ScaNN) two-stage export comes to the exact (BruteForce) one.

Loads both SavedModels (same model, exported by `scripts/scale_run.py` with each index), takes
--users users of the raw log (each user's last --history clicks and non-clicks as the request)
and prints the mean over users of

- stage 1: |ScaNN's retrieved N ∩ BruteForce's retrieved N| / N (the export's `retrieve`);
- `recommend`: |ScaNN top-k ∩ BruteForce top-k| / k.

  PYTHONPATH=. python scripts/compare_indexes.py --raw RAW --exact PUSH/brute_force/ccl4rec/1 \
      --approximate PUSH/scann/ccl4rec/1
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402

from serving.versions import load_version  # noqa: E402
from tf_ccl4rec import features as F  # noqa: E402


def requests(raw: str, users: int, history: int, seed: int):
    """(click history, non-click history) of `users` random users of the log, newest last."""
    log = pd.read_csv(
        os.path.join(raw, F.RAW_INTERACTIONS_FILE),
        dtype={F.RAW_USER_ID: str, F.RAW_VIDEO_ID: str},
        usecols=[F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_CLICK],
    )
    chosen = np.random.default_rng(seed).choice(log[F.RAW_USER_ID].unique(), users, replace=False)
    out = []
    for _, rows in log[log[F.RAW_USER_ID].isin(set(chosen))].groupby(F.RAW_USER_ID):
        clicked = rows[F.RAW_CLICK] == 1
        out.append(
            (
                rows[F.RAW_VIDEO_ID][clicked].tolist()[-history:],
                rows[F.RAW_VIDEO_ID][~clicked].tolist()[-history:],
            )
        )
    return out


def _pad(ids):
    return tf.constant([ids or [""]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--exact", required=True, help="BruteForce export directory")
    parser.add_argument("--approximate", required=True, help="ScaNN export directory")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    exact = load_version(args.exact, 1).model
    approximate = load_version(args.approximate, 1).model
    stage1, top = [], []
    for clicks, nonclicks in requests(args.raw, args.users, args.history, args.seed):
        c, nc = _pad(clicks), _pad(nonclicks)
        got = [set(m.retrieve(c, nc, args.n)["video_ids"].numpy()[0]) for m in (exact, approximate)]
        stage1.append(len(got[0] & got[1]) / args.n)
        rec = [
            set(m.signatures["recommend"](click_history=c, nonclick_history=nc, k=args.k)[
                "video_ids"].numpy()[0]) for m in (exact, approximate)
        ]  # fmt: skip
        top.append(len(rec[0] & rec[1]) / args.k)
    print(
        f"{len(top)} users: stage 1 overlap@{args.n} {np.mean(stage1):.3f} "
        f"(min {np.min(stage1):.3f}); recommend overlap@{args.k} {np.mean(top):.3f} "
        f"(min {np.min(top):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
