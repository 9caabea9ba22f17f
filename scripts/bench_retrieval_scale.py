"""Stage costs of `recommend` at a large catalogue, in-process, synthetic weights.

Builds an untrained CCL4Rec of the default preset's sizes (d 32, MLP 200-80, history 50, per-video
bias; no categories) with the retrieval term's projection over --videos videos, and times for one
user (B = 1), after a warm-up, median / p99 of --repeats calls of compiled tf.functions:

- stage 1: `tfrs.layers.factorized_top_k.BruteForce` over the catalogue's retrieval vectors,
  fetching N + 50 (a history's worth of clicked videos to drop);
- stage 2: Eq 13 (`score_candidates`) on N candidates;
- one-stage: Eq 13 on the whole catalogue in chunks of `export.RECOMMEND_CHUNK` (fewer repeats).

Not an export: the Transform vocabulary, id lookups and gRPC of a real `recommend` are left out
(issue 14 item 4 measures a 1.7 M-video export end to end).

  PYTHONPATH=. python scripts/bench_retrieval_scale.py --videos 1700000 --n 1000,17000,170000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from tf_ccl4rec import export  # noqa: E402
from tf_ccl4rec import features as F  # noqa: E402
from tf_ccl4rec.config import CCL4RecConfig  # noqa: E402
from tf_ccl4rec.model import CCL4RecModel  # noqa: E402

HISTORY = 50


def timed(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1_700_000)
    parser.add_argument("--n", default="1000,17000,170000", help="stage-1 candidate counts")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--exhaustive-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    config = CCL4RecConfig.from_preset(
        "default",
        vocab_size=args.videos,
        max_history=HISTORY,
        video_representation="id",
        category_statistics=False,
        retrieval_weight=1.0,
    )
    tf.keras.utils.set_random_seed(0)
    model = CCL4RecModel(config)
    rng = np.random.default_rng(0)
    history = {
        F.MODEL_CLICK_HISTORY: tf.constant(rng.integers(1, args.videos, (1, HISTORY)), tf.int64),
        F.MODEL_NONCLICK_HISTORY: tf.constant(rng.integers(1, args.videos, (1, HISTORY)), tf.int64),
    }
    model({**history, F.MODEL_TARGET: tf.constant([1], tf.int64)})
    t0 = time.perf_counter()
    indices = tf.range(1, args.videos + 1, dtype=tf.int64)
    vectors = tf.concat(
        [
            model.retrieval_candidates(indices[i : i + 100_000])
            for i in range(0, args.videos, 100_000)
        ],
        axis=0,
    )
    index = tfrs.layers.factorized_top_k.BruteForce(k=10).index(vectors, indices)
    print(
        f"{args.videos} videos, retrieval vectors {vectors.shape[1]} wide "
        f"({vectors.shape[0] * vectors.shape[1] * 4 / 2**20:.0f} MiB), indexed in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    query = tf.function(lambda: model.retrieval_queries(history))
    for n in (int(x) for x in args.n.split(",")):
        fetch = tf.constant(min(n + HISTORY, args.videos), tf.int32)
        stage1 = tf.function(lambda fetch=fetch: index(query(), k=fetch))
        candidates = tf.constant(rng.integers(1, args.videos, (1, n)), tf.int64)
        stage2 = tf.function(lambda c=candidates: model.score_candidates(history, c))
        p1 = timed(stage1, args.repeats)
        p2 = timed(stage2, args.repeats)
        print(
            f"N = {n}: stage 1 (BruteForce, k = {int(fetch)}) p50 {p1[0]:.1f} / p99 {p1[1]:.1f} "
            f"ms; stage 2 (Eq 13 on N) p50 {p2[0]:.1f} / p99 {p2[1]:.1f} ms"
        )

    chunk = export.RECOMMEND_CHUNK

    @tf.function
    def exhaustive():
        def step(start, best):
            end = tf.minimum(start + chunk, args.videos + 1)
            scores = model.score_candidates(history, tf.range(start, end, dtype=tf.int64)[None, :])
            return end, tf.math.top_k(tf.concat([best, scores], axis=1), k=10).values

        return tf.while_loop(
            lambda start, _: start <= args.videos,
            step,
            (tf.constant(1, tf.int64), tf.fill([1, 10], -np.inf)),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([1, None])),
        )

    p = timed(exhaustive, args.exhaustive_repeats, warmup=1)
    print(f"one-stage (Eq 13 on all {args.videos}, chunks of {chunk}): p50 {p[0]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
