"""`ccl4rec bench multiworker`: the Trainer's `run_fn` in 1 process vs N worker processes.

N worker processes on this host's free localhost ports, each with the ``TF_CONFIG`` that Vertex
AI Training / a Kubeflow TFJob would give it, run `tf_ccl4rec.trainer.train_and_export` (so
`MultiWorkerMirroredStrategy`, DATA sharding and the chief-only export are the Trainer's own),
against one process with the same global batch. Prints examples/s of the training steps (the
first steps, which trace the graph, excluded). Not a test: nothing here asserts a speed;
`tests/pipeline/test_multi_worker.py` runs the same launcher and checks the models agree.

Also the subprocess entry point: ``python -m tf_ccl4rec.bench.multi_worker worker ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

RESULT_PREFIX = "multi_worker_result: "
WARMUP_STEPS = 3  # steps excluded from the examples/s (graph tracing, first collectives)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def cluster_tf_config(ports: list[int], index: int) -> str:
    """The TF_CONFIG of worker ``index`` in a cluster of workers on these localhost ports
    (worker 0 is the chief, as in a Vertex AI job with one worker pool)."""
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def prepare(workdir: str, num_rows: int = 200, num_users: int = 12, seed: int = 1) -> dict:
    """Tiny Transform output + transformed train/eval examples under ``workdir``.

    Returns:
      {"tft": dir, "train": file pattern, "eval": file pattern, "raw_rows": the raw rows}
    """
    from tf_ccl4rec.testing import analyze, random_raw_rows, write_transformed_examples

    raw = random_raw_rows(num_rows=num_rows, num_users=num_users, seed=seed)
    tft_output, transformed = analyze(raw, os.path.join(workdir, "tft"), {"max_history": 8})
    paths = {"tft": os.path.join(workdir, "tft"), "raw_rows": raw}
    for split in ("train", "eval"):
        directory = os.path.join(workdir, "examples", f"Split-{split}")
        os.makedirs(directory, exist_ok=True)
        write_transformed_examples(transformed, os.path.join(directory, "data.tfrecord"))
        paths[split] = os.path.join(directory, "*")
    return paths


def model_overrides(batch_size: int) -> dict:
    """The small model of the test and the benchmark (default preset, per-replica batch)."""
    return {"embedding_dim": 8, "mlp_units": [8], "batch_size": batch_size, "seed": 0}


def _worker(args) -> int:
    """One Trainer process: train_and_export on the prepared data; one JSON result line."""
    import tensorflow as tf
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts

    from tf_ccl4rec.trainer import train_and_export
    from tf_ccl4rec.training_settings import TrainerSettings

    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(args.data, "examples")
    examples.split_names = '["train", "eval"]'
    factory = tfxio_utils.get_tf_dataset_factory_from_artifact([examples], [])

    class StepTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

    timer = StepTimer()
    settings = TrainerSettings(
        preset="default",
        model=model_overrides(args.batch_size),
        transform={"max_history": 8},
        distribution=args.distribution,
        max_epochs=1,
        train_steps=args.steps,
        refit=False,  # one training of exactly `steps` steps
        rows_per_user=args.rows_per_user,
    )
    fn_args = fn_args_utils.FnArgs(
        train_files=[os.path.join(args.data, "examples", "Split-train", "*")],
        eval_files=[os.path.join(args.data, "examples", "Split-eval", "*")],
        transform_output=os.path.join(args.data, "tft"),
        serving_model_dir=args.out,
        model_run_dir=None,
        train_steps=args.steps,
        eval_steps=1,
        custom_config=settings.to_custom_config(),
        hyperparameters=None,
        data_accessor=fn_args_utils.DataAccessor(
            tf_dataset_factory=factory, record_batch_factory=None, data_view_decode_fn=None
        ),
    )
    start = time.perf_counter()
    model = train_and_export(fn_args, callbacks=[timer])
    seconds = time.perf_counter() - start
    strategy = model.distribute_strategy
    replicas = int(strategy.num_replicas_in_sync)
    global_batch = args.batch_size * replicas
    timed = timer.times[WARMUP_STEPS - 1 :]
    rate = (len(timed) - 1) * global_batch / (timed[-1] - timed[0]) if len(timed) > 1 else None
    from tf_ccl4rec import distribution

    result = {
        "chief": distribution.is_chief(distribution.tf_config()) or "TF_CONFIG" not in os.environ,
        "strategy": type(strategy).__name__,
        "replicas": replicas,
        "global_batch": global_batch,
        "steps": int(model.optimizer.iterations.numpy()),
        "examples_per_s": rate,
        "run_fn_seconds": round(seconds, 1),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def launch(
    data: str,
    out_root: str,
    workers: int,
    batch_size: int,
    steps: int,
    rows_per_user: int = 4,
    timeout: float = 900,
    log=print,
) -> list[dict]:
    """Runs the Trainer in ``workers`` processes (1: one process, no TF_CONFIG) and returns each
    worker's result dict (plus "log": its output). ``batch_size`` is per replica.

    The model is exported to ``out_root``/serving (by the chief). Every process is killed if one
    fails or the timeout passes.
    """
    ports = [free_port() for _ in range(workers)]
    procs = []
    try:
        for index in range(workers):
            env = dict(os.environ)
            env.pop("TF_CONFIG", None)
            if workers > 1:
                env["TF_CONFIG"] = cluster_tf_config(ports, index)
            cmd = [
                sys.executable, "-m", "tf_ccl4rec.bench.multi_worker", "worker",
                "--data", data, "--out", os.path.join(out_root, "serving"),
                "--batch-size", str(batch_size), "--steps", str(steps),
                "--rows-per-user", str(rows_per_user),
                "--distribution", "auto" if workers > 1 else "default",
            ]  # fmt: skip
            stdout = open(os.path.join(out_root, f"worker{index}.log"), "w")  # noqa: SIM115
            procs.append((subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT),
                          stdout))  # fmt: skip
        deadline = time.time() + timeout
        while any(p.poll() is None for p, _ in procs):
            failed = [p for p, _ in procs if p.poll() not in (None, 0)]
            if failed or time.time() > deadline:
                break
            time.sleep(0.5)
    finally:
        for p, f in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            f.close()
    results = []
    for index, (p, _) in enumerate(procs):
        with open(os.path.join(out_root, f"worker{index}.log")) as f:
            text = f.read()
        lines = [x for x in text.splitlines() if x.startswith(RESULT_PREFIX)]
        if p.returncode != 0 or not lines:
            raise RuntimeError(
                f"worker {index} of {workers} failed (exit {p.returncode}):\n{text[-4000:]}"
            )
        results.append({**json.loads(lines[-1][len(RESULT_PREFIX) :]), "log": text})
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="worker processes to compare to 1")
    parser.add_argument("--rows", type=int, default=4000, help="generated training rows")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="per replica (N workers)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--workdir", help="keep the data and models here (default: a temp dir)")
    parser.add_argument("--out", help="write the results as JSON here")


def run(args) -> int:
    from tf_ccl4rec.bench import write_output

    with contextlib.ExitStack() as stack:
        workdir = args.workdir or stack.enter_context(tempfile.TemporaryDirectory())
        data = os.path.join(workdir, "data")
        t0 = time.perf_counter()
        prepare(data, num_rows=args.rows, num_users=args.users)
        print(f"bench multiworker: {args.rows} rows prepared in {time.perf_counter() - t0:.0f} s")
        rows = []
        # The same global batch in both runs: N x per-replica batch.
        for workers, batch in (
            (1, args.batch_size * args.workers),
            (args.workers, args.batch_size),
        ):
            out_root = os.path.join(workdir, f"{workers}-workers")
            os.makedirs(out_root, exist_ok=True)
            t0 = time.perf_counter()
            results = launch(data, out_root, workers, batch, args.steps)
            wall = time.perf_counter() - t0
            chief = results[0]
            rows.append(
                {
                    "workers": workers,
                    "strategy": chief["strategy"],
                    "replicas": chief["replicas"],
                    "global_batch": chief["global_batch"],
                    "steps": chief["steps"],
                    "examples_per_s": round(chief["examples_per_s"] or 0.0, 1),
                    "wall_s": round(wall, 1),
                }
            )
            print(
                f"bench multiworker: {workers} worker(s), {chief['strategy']}, global batch "
                f"{chief['global_batch']}, {chief['steps']} steps: "
                f"{rows[-1]['examples_per_s']:.0f} examples/s (steps after the first "
                f"{WARMUP_STEPS}); {wall:.0f} s wall for the whole run_fn",
                flush=True,
            )
        speedup = rows[1]["examples_per_s"] / max(rows[0]["examples_per_s"], 1e-9)
        print(f"bench multiworker: {args.workers} workers / 1 worker = {speedup:.2f}x", flush=True)
    if args.out:
        write_output(
            args.out, {"runs": rows, "speedup": round(speedup, 3), "cores": os.cpu_count()}
        )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tf_ccl4rec.bench.multi_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="one Trainer process (TF_CONFIG from the environment)")
    w.add_argument("--data", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--batch-size", type=int, required=True)
    w.add_argument("--steps", type=int, required=True)
    w.add_argument("--rows-per-user", type=int, default=4)
    w.add_argument("--distribution", default="auto")
    args = parser.parse_args(argv)
    import tf_ccl4rec  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)

    return _worker(args)


if __name__ == "__main__":
    sys.exit(main())
