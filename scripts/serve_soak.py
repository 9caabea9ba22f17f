"""Memory soak of ``ccl4rec serve`` at its request limits: server RSS before and after.

Starts ``python -m serving.server`` on a push directory (default: a real CCL4Rec export built
here with ``tf_ccl4rec.testing.build_serving_model``), then sends

* ``--requests`` (20) of the largest requests the limits accept, ``predict`` and ``recommend``
  alternating, at ``--concurrency`` (4): ``--max-history`` ids in both histories of every user,
  ``--max-candidates`` candidate ids, as many users as fit in ``--max-message-bytes``;
* ``--oversize`` (4) requests of 16 MB, which gRPC must refuse (RESOURCE_EXHAUSTED);

and prints the server's RSS when started, before the first large request (after a small warm-up
request of each signature), after it, and after all of them. The target is growth <= 10 % from
"before" to "after 20". Each RSS sample is taken 1 s after the last answer, once the server's
deferred heap trim has run. Usage (from the repository root)::

    PYTHONPATH=. python scripts/serve_soak.py [--model-base-path PUSH] [--max-history 1000] ...

Measured 2026-12-01 on the dev machine (2 cores shared with other jobs: latencies are not
comparable between runs), default limits, the test export of ``build_serving_model`` (about 30
videos), largest requests: predict 391 users x 1000 + 1000 history ids + 255 candidates
(3.94 MiB), recommend 391 x (1000 + 1000), k 8 (3.50 MiB); all 20 OK, all 4 oversize
RESOURCE_EXHAUSTED. Server RSS in MiB::

                                          started  before  after 1  after 20  growth
    before (6faeb13, oneDNN's pool)         618.6   619.6    679.1     702.6  +13.4 %
    now (TF's plain CPU allocator)          618.1   618.7    617.3     616.6   -0.4 %
    now, TF_ENABLE_ONEDNN_OPTS=1 forced     620.2   629.8    690.9     733.6  +16.5 %

(An earlier run of the old code gave +10.6 %.) The growth was TensorFlow's oneDNN allocator
(``MklCPUAllocator``, a BFC pool that never returns pages); ``serving.memory`` explains the fix.
Before the limits, the issue measured 692 MB -> 2.7 GB after one 16 MB request and 5.1 GB kept
after four concurrent 55 MB requests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from serving import limits as lim  # noqa: E402
from serving import signatures as sig  # noqa: E402
from serving.client import ServingClient  # noqa: E402
from tf_ccl4rec.bench import serve as bench_serve  # noqa: E402
from tf_ccl4rec.bench.serve import rss_mb  # noqa: E402

MODEL = "ccl4rec"


def build_push(workdir: str) -> str:
    """A push dir with one real CCL4Rec export (version 1)."""
    from tf_ccl4rec.testing import build_serving_model

    base = os.path.join(workdir, "push")
    build_serving_model(
        os.path.join(workdir, "build"),
        train_steps=5,
        export_dir=os.path.join(base, MODEL, "1"),
    )
    return base


def start_server(base: str, args, log_path: str):
    limits = [
        "--max-batch", str(args.max_batch), "--max-history", str(args.max_history),
        "--max-candidates", str(args.max_candidates),
        "--max-message-bytes", str(args.max_message_bytes),
        "--max-inflight-bytes", str(args.max_inflight_bytes),
    ]  # fmt: skip
    return bench_serve.start_server(base, MODEL, args.workers, log_path, limits, poll_s=0.3)


def largest_requests(pool: list[str], args, seed: int = 0) -> dict:
    """The largest predict and recommend requests the limits accept (users fitted to the size)."""
    rng = np.random.default_rng(seed)
    n = args.max_history

    def build(users):
        clicks = [list(rng.choice(pool, n)) for _ in range(users)]
        nonclicks = [list(rng.choice(pool, n)) for _ in range(users)]
        per_user = max(1, min(args.max_candidates // users, 10 * n))
        cands = [list(rng.choice(pool, per_user)) for _ in range(users)]
        k = max(1, min(args.max_candidates // users, len(pool) // 2))
        return {
            sig.PREDICT: sig.make_predict_request(
                MODEL, sig.PREDICT, sig.predict_inputs(clicks, cands, nonclicks)
            ),
            sig.RECOMMEND: sig.make_predict_request(
                MODEL, sig.RECOMMEND, sig.recommend_inputs(clicks, k, nonclicks)
            ),
        }

    users = args.max_batch
    while True:
        requests = build(users)
        size = max(r.ByteSize() for r in requests.values())
        if size <= args.max_message_bytes or users == 1:
            return requests
        users = max(1, int(users * args.max_message_bytes / size * 0.98))


def describe(request) -> str:
    shapes = {a: [d.size for d in t.tensor_shape.dim] for a, t in request.inputs.items()}
    return f"{request.model_spec.signature_name} {shapes} {request.ByteSize() / 2**20:.2f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", help="push dir to serve (default: build one)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--oversize", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=lim.DEFAULT_MAX_BATCH)
    parser.add_argument("--max-history", type=int, default=lim.DEFAULT_MAX_HISTORY)
    parser.add_argument("--max-candidates", type=int, default=lim.DEFAULT_MAX_CANDIDATES)
    parser.add_argument("--max-message-bytes", type=int, default=lim.DEFAULT_MAX_MESSAGE_BYTES)
    parser.add_argument("--max-inflight-bytes", type=int, default=lim.DEFAULT_MAX_INFLIGHT_BYTES)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="ccl4rec-soak-")
    base = args.model_base_path or build_push(workdir)
    log_path = os.path.join(workdir, "server.log")
    proc, log, target = start_server(base, args, log_path)
    try:
        with ServingClient(target, MODEL, timeout=60) as client:
            pool = bench_serve.video_pool(client, ks=(4096, 1024, 256, 64, 16, 4))
            rss_start = rss_mb(proc.pid)
            for _ in range(3):  # warm-up of both signatures at a small size
                client.predict([pool[:3]], [pool[:2]], [pool[3:5]])
                client.recommend([pool[:3]], k=2, nonclick_histories=[pool[3:5]])
        requests = largest_requests(pool, args)
        for r in requests.values():
            print("large request:", describe(r))
        stub_channel = grpc.insecure_channel(
            target, options=[("grpc.max_send_message_length", 64 * 2**20)]
        )
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        stub = prediction_service_pb2_grpc.PredictionServiceStub(stub_channel)

        def settled_rss():  # after the server's deferred heap trim (serving.memory)
            time.sleep(1.0)
            return rss_mb(proc.pid)

        rss = {"started": rss_start, "before": settled_rss()}
        outcomes, lock = [], threading.Lock()
        order = [list(requests)[i % 2] for i in range(args.requests)]

        def send(name):
            start = time.perf_counter()
            try:
                stub.Predict(requests[name], timeout=300)
                code = "OK"
            except grpc.RpcError as err:
                code = err.code().name
            with lock:
                outcomes.append((name, code, time.perf_counter() - start))

        send(order[0])
        rss["after 1"] = settled_rss()
        remaining = order[1:]
        while remaining:
            batch, remaining = remaining[: args.concurrency], remaining[args.concurrency :]
            threads = [threading.Thread(target=send, args=(n,)) for n in batch]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        rss[f"after {args.requests}"] = settled_rss()
        big = sig.make_predict_request(
            MODEL, sig.PREDICT, sig.predict_inputs([["x" * 16_000_000]], [[pool[0]]])
        )
        refused = []
        for _ in range(args.oversize):
            try:
                stub.Predict(big, timeout=120)
                refused.append("OK")
            except grpc.RpcError as err:
                refused.append(err.code().name)
        rss[f"after {args.oversize} x 16 MB"] = settled_rss()
        stub_channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()

    codes = {}
    for name, code, _ in outcomes:
        codes[(name, code)] = codes.get((name, code), 0) + 1
    latencies = sorted(t for *_, t in outcomes)
    print(f"limits: batch {args.max_batch}, history {args.max_history}, candidates "
          f"{args.max_candidates}, message {args.max_message_bytes} B; workers {args.workers}")  # fmt: skip
    print(f"{len(outcomes)} large requests at concurrency {args.concurrency}: {codes}; "
          f"latency p50 {latencies[len(latencies) // 2]:.2f} s, max {latencies[-1]:.2f} s")  # fmt: skip
    print(f"{args.oversize} oversize (16 MB) requests: {refused}")
    for when, mb in rss.items():
        print(f"server RSS {when:>16}: {mb:8.1f} MiB")
    first, last = rss["before"], rss[f"after {args.requests}"]
    growth = (last - first) / first * 100
    after1 = (last - rss["after 1"]) / rss["after 1"] * 100
    print(f"growth before -> after {args.requests}: {growth:+.1f} % (target <= 10 %); "
          f"after 1 -> after {args.requests}: {after1:+.1f} %")  # fmt: skip
    print(f"server log: {log_path}")
    return 0 if growth <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
