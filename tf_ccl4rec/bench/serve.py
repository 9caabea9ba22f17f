"""Serving benchmark: gRPC latency/QPS beside the in-process call, and a soak run.

``run_serve_benchmark`` starts ``serving.server`` on a push directory (or uses a running server),
then measures p50/p99 latency and QPS at each concurrency for ``predict`` (1 user, histories of
160, 32 candidates) and ``recommend``, next to the same SavedModel call made in-process. The soak
mode sends N predict requests at concurrency C and reports errors and the server's RSS over time.
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import numpy as np  # noqa: E402

from tf_ccl4rec.bench import write_output  # noqa: E402
from tf_ccl4rec.features import DEFAULT_MAX_HISTORY  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (Linux ``/proc``), None when unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    """The 1 / 5 / 15-minute load averages, printed beside every latency figure."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _stats(latencies_s: list[float], wall_s: float, errors: int) -> dict:
    ms = np.asarray(latencies_s) * 1000
    return {
        "load_average": load_average(),  # at the end of the cell
        "requests": len(latencies_s) + errors,
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if len(ms) else None,
        "qps": round(len(latencies_s) / wall_s, 1) if wall_s > 0 else None,
    }


def _drive(call_factory, requests: int, concurrency: int, on_progress=None) -> dict:
    """Runs ``requests`` calls on ``concurrency`` threads; each thread gets its own callable."""
    latencies, errors, lock = [], [0], threading.Lock()
    remaining = [requests]

    def worker():
        call = call_factory()
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
                done = requests - remaining[0]
            start = time.perf_counter()
            try:
                call()
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
            except Exception:  # counted, reported; a benchmark keeps going
                with lock:
                    errors[0] += 1
            if on_progress is not None:
                on_progress(done)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(latencies, time.perf_counter() - started, errors[0])


def start_server(model_base_path, model_name, workers, log_path, extra_args=(), poll_s=0.2):
    """Starts `python -m serving.server` on a free port and waits until the model is AVAILABLE.

    Args:
      model_base_path / model_name / workers: The server's flags of the same names.
      log_path: The server's stdout + stderr.
      extra_args: More server flags (e.g. the request limits).
      poll_s: Pause between readiness checks.

    Returns:
      (process, open log file, "127.0.0.1:<port>"); the caller stops both.
    """
    from serving.client import ServingClient

    port = _free_port()
    cmd = [
        sys.executable, "-m", "serving.server", "--model-base-path", model_base_path,
        "--model-name", model_name, "--port", str(port), "--workers", str(workers),
        *extra_args,
    ]  # fmt: skip
    log = open(log_path, "w")  # noqa: SIM115 (owned by the process record)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, cwd=_REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    with ServingClient(target, model_name, timeout=5) as client:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
            try:
                if any(s.state == "AVAILABLE" for s in client.status()):
                    return proc, log, target
            except Exception:
                time.sleep(poll_s)
    proc.terminate()
    raise RuntimeError(f"server did not become ready; see {log_path}")


def video_pool(client, ks=(1024, 256, 64, 16)) -> list[str]:
    """Real ids of the served model: `recommend` on an empty history, the first k of `ks` served."""
    for k in ks:
        try:
            ids, _ = client.recommend([[]], k=k)
            return ids[0]
        except Exception:
            continue
    raise RuntimeError("could not read video ids from the model's recommend signature")


def run_serve_benchmark(
    model_base_path: str | None = None,
    model_name: str = "ccl4rec",
    target: str | None = None,
    concurrency: tuple[int, ...] = (1, 8, 16),
    requests: int = 200,
    history: int = DEFAULT_MAX_HISTORY,
    candidates: int = 32,
    k: int = 10,
    soak_requests: int = 0,
    soak_concurrency: int = 16,
    in_process: bool = True,
    signatures: tuple[str, ...] = ("predict", "recommend"),
    seed: int = 0,
    log_path: str = "/tmp/ccl4rec-bench-serve.log",
) -> dict:
    """Measures the gRPC server against the in-process SavedModel call.

    Args:
      model_base_path: push base (as ``ccl4rec serve --model-base-path``); needed to start a
        server and for the in-process figures.
      model_name: served model name.
      target: ``host:port`` of a running server; None = start ``serving.server`` here.
      concurrency: client thread counts to measure.
      requests: requests per (signature, concurrency) cell.
      history: click and non-click history length of the one user per request.
      candidates: candidates per predict request.
      k: recommend's k.
      soak_requests: if > 0, also send this many predict requests at ``soak_concurrency``.
      soak_concurrency: soak client threads.
      in_process: also time the SavedModel call in this process.
      signatures: which of predict / recommend to measure.
      seed: sampling seed of the request ids.
      log_path: the started server's log.

    Returns:
      ``{"grpc": {signature: {concurrency: stats}}, "in_process": {...}, "soak": {...},
      "server_rss_mb": ...}`` where stats = requests, errors, p50_ms, p99_ms, qps and the load
      average at the end of the cell; server_rss_mb is the started server's RSS after the runs.
    """
    from serving import layout
    from serving import signatures as sig
    from serving.client import ServingClient
    from serving.server import resolve_model_path
    from serving.versions import load_version

    if target is None and model_base_path is None:
        raise ValueError("give model_base_path (to start a server) or target")
    proc = log = None
    if target is None:
        proc, log, target = start_server(
            model_base_path, model_name, max(max(concurrency), soak_concurrency), log_path
        )
    result = {"target": target, "config": {
        "concurrency": list(concurrency), "requests": requests, "history": history,
        "candidates": candidates, "k": k,
    }}  # fmt: skip
    try:
        with ServingClient(target, model_name, timeout=60) as client:
            pool = video_pool(client)
            result["version"] = client.last_version
        rng = np.random.default_rng(seed)
        clicks = [list(rng.choice(pool, history))]
        nonclicks = [list(rng.choice(pool, history))]
        cands = [list(rng.choice(pool, candidates))]
        inputs = {
            sig.PREDICT: sig.predict_inputs(clicks, cands, nonclicks),
            sig.RECOMMEND: sig.recommend_inputs(clicks, k, nonclicks),
        }
        inputs = {name: value for name, value in inputs.items() if name in signatures}

        def grpc_call(signature):
            def factory():
                client = ServingClient(target, model_name, timeout=60)
                return lambda: client.predict_raw(signature, inputs[signature])

            return factory

        result["grpc"] = {}
        for signature in inputs:
            _drive(grpc_call(signature), 20, 1)  # warm-up
            result["grpc"][signature] = {
                c: _drive(grpc_call(signature), requests, c) for c in concurrency
            }
        if proc is not None:
            result["server_rss_mb"] = round(rss_mb(proc.pid), 1)
        if in_process and model_base_path is not None:
            import tensorflow as tf

            model_path = resolve_model_path(model_base_path, model_name)
            version = layout.list_versions(model_path)[-1]
            # load_version: also registers custom ops (ScaNN's) that the export uses.
            model = load_version(layout.version_dir(model_path, version), version).model
            result["in_process"] = {}
            for signature, value in inputs.items():
                fn = model.signatures[signature]
                tensors = {a: tf.constant(v) for a, v in value.items()}

                def factory(fn=fn, tensors=tensors):
                    return lambda: fn(**tensors)

                _drive(factory, 20, 1)
                result["in_process"][signature] = {
                    c: _drive(factory, requests, c) for c in concurrency
                }
        if soak_requests > 0:
            samples = []
            pid = proc.pid if proc is not None else None

            def progress(done):
                if pid is not None and done % max(soak_requests // 10, 1) == 0:
                    samples.append((done, rss_mb(pid)))

            start_rss = round(rss_mb(pid), 1) if pid else None
            soak = _drive(grpc_call(sig.PREDICT), soak_requests, soak_concurrency, progress)
            soak.update(
                concurrency=soak_concurrency,
                rss_start_mb=start_rss,
                rss_end_mb=round(rss_mb(pid), 1) if pid else None,
                rss_samples_mb=[(d, round(m, 1)) for d, m in sorted(samples) if m is not None],
            )
            result["soak"] = soak
    finally:
        if proc is not None:
            proc.terminate()  # SIGTERM: the server's clean shutdown
            proc.wait(timeout=60)
            log.close()
    return result


def format_report(result: dict) -> str:
    """A plain-text table of ``run_serve_benchmark``'s result."""
    lines = [f"server {result['target']} version {result.get('version')}  {result['config']}"]
    lines.append(
        f"{'path':10} {'signature':10} {'conc':>4} {'p50 ms':>9} {'p99 ms':>9} {'QPS':>8} {'err':>4}"
        "  load average (1 / 5 / 15 min)"
    )
    for path in ("grpc", "in_process"):
        for signature, cells in result.get(path, {}).items():
            for c, s in cells.items():
                lines.append(
                    f"{path:10} {signature:10} {c:>4} {s['p50_ms']:>9} {s['p99_ms']:>9} "
                    f"{s['qps']:>8} {s['errors']:>4}  {s.get('load_average', '')}"
                )
    if result.get("server_rss_mb") is not None:
        lines.append(f"server RSS after the runs: {result['server_rss_mb']} MiB")
    if "soak" in result:
        s = result["soak"]
        lines.append(
            f"soak: {s['requests']} predict requests at concurrency {s['concurrency']}: "
            f"{s['errors']} errors, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, {s['qps']} QPS, "
            f"server RSS {s['rss_start_mb']} -> {s['rss_end_mb']} MiB, samples {s['rss_samples_mb']}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the serving benchmark (for ``ccl4rec bench serve``)."""
    parser.add_argument("--model-base-path", help="push base to serve and to load in-process")
    parser.add_argument("--model-name", default="ccl4rec")
    parser.add_argument("--server", help="HOST:PORT of a running server (default: start one)")
    parser.add_argument("--concurrency", default="1,8,16")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--history", type=int, default=DEFAULT_MAX_HISTORY)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--signatures", default="predict,recommend", help="which signatures to measure"
    )
    parser.add_argument(
        "--no-in-process", action="store_true", help="skip the in-process SavedModel figures"
    )
    parser.add_argument("--soak-requests", type=int, default=0)
    parser.add_argument("--soak-concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", help="also write the results as JSON here")


def run(args: argparse.Namespace) -> int:
    result = run_serve_benchmark(
        model_base_path=args.model_base_path,
        model_name=args.model_name,
        target=args.server,
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        requests=args.requests,
        history=args.history,
        candidates=args.candidates,
        k=args.k,
        soak_requests=args.soak_requests,
        soak_concurrency=args.soak_concurrency,
        in_process=not args.no_in_process,
        signatures=tuple(args.signatures.split(",")),
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    if args.out:
        write_output(args.out, result)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m tf_ccl4rec.bench.serve", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
