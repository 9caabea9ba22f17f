"""Stage 1 of a two-stage `recommend` alone, at a large catalogue: exact variants and ScaNN.

Random Gaussian vectors (--videos x --dim, float32; an untrained model's retrieval vectors are of
this kind), one query per call (B = 1), fetching --fetch neighbours; median / p99 of --repeats
calls after a warm-up, in-process. Exact variants: TFRS BruteForce; MatMul + tf.math.top_k; MatMul
+ tf.math.approx_max_k; the index stored as bfloat16. ScaNN (tree + asymmetric hashing + exact
re-ranking of the best --reorder) at each --leaves-searched, with recall@fetch against the exact
result. Random vectors are the hard case for a tree index (no cluster structure).

  PYTHONPATH=. python scripts/bench_retrieval_index.py --videos 1700000 --fetch 1050
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402
from bench_retrieval_scale import timed  # noqa: E402  (the sibling script; sys.path[0])

from tf_ccl4rec import export  # noqa: E402
from tf_ccl4rec.bench.serve import load_average  # noqa: E402


def report(name, p, extra=""):
    print(f"{name:44} p50 {p[0]:7.2f} ms  p99 {p[1]:7.2f} ms  {extra}  (load {load_average()})",
          flush=True)  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1_700_000)
    parser.add_argument("--dim", type=int, default=33)
    parser.add_argument("--fetch", type=int, default=1050, help="neighbours per query (N + 50)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--leaves-searched", default="0.02,0.05,0.1", help="fractions of leaves")
    parser.add_argument("--queries", type=int, default=20, help="queries for recall")
    parser.add_argument("--reorder", default="2,10", help="re-ranked candidates, x fetch")
    parser.add_argument("--skip-exact", action="store_true")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    vectors = tf.constant(rng.normal(size=(args.videos, args.dim)).astype(np.float32))
    ids = tf.range(1, args.videos + 1, dtype=tf.int64)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    query = tf.constant(queries[:1])
    k = args.fetch
    exact = [set(np.argsort(-(vectors.numpy() @ q))[:k] + 1) for q in queries]

    def recall(index_fn):
        got = [set(index_fn(tf.constant(q[None, :]))[1].numpy()[0]) for q in queries]
        return np.mean([len(g & e) / k for g, e in zip(got, exact, strict=True)])

    if not args.skip_exact:
        brute = tfrs.layers.factorized_top_k.BruteForce(k=k).index(vectors, ids)
        fn = tf.function(lambda: brute(query, k=k))
        report("BruteForce (tfrs), float32", timed(fn, args.repeats))
        fn = tf.function(lambda: tf.math.top_k(tf.matmul(query, vectors, transpose_b=True), k))
        report("MatMul + top_k, float32", timed(fn, args.repeats))
        fn = tf.function(
            lambda: tf.math.approx_max_k(tf.matmul(query, vectors, transpose_b=True), k)
        )
        report("MatMul + approx_max_k, float32", timed(fn, args.repeats))
        fn = tf.function(lambda: tf.matmul(query, vectors, transpose_b=True))
        report("MatMul alone, float32", timed(fn, args.repeats))
        fn = tf.function(
            lambda: export.block_max_top_k(tf.matmul(query, vectors, transpose_b=True), k)
        )
        report("MatMul + block_max_top_k, float32", timed(fn, args.repeats))
        half = tf.cast(vectors, tf.bfloat16)
        fn = tf.function(
            lambda: tf.math.top_k(
                tf.cast(tf.matmul(tf.cast(query, tf.bfloat16), half, transpose_b=True), tf.float32),
                k,
            )
        )
        report("MatMul + top_k, bfloat16 index", timed(fn, args.repeats))

    leaves = export.scann_tree_leaves(args.videos)  # the export's tree; raw shares, no floor
    for fraction in (float(x) for x in args.leaves_searched.split(",")):
        for reorder in (int(x) for x in args.reorder.split(",")):
            search = max(1, math.ceil(leaves * fraction))
            t0 = time.perf_counter()
            index = tfrs.layers.factorized_top_k.ScaNN(
                k=k,
                num_leaves=leaves,
                num_leaves_to_search=search,
                num_reordering_candidates=reorder * k,
            ).index(vectors, ids)
            built = time.perf_counter() - t0
            fn = tf.function(lambda index=index: index(query))
            p = timed(fn, args.repeats)
            r = recall(tf.function(lambda q, index=index: index(q)))
            report(
                f"ScaNN {leaves} leaves, {search} searched, re-rank {reorder}x",
                p,
                f"recall@{k} {r:.3f}, built in {built:.0f} s",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
