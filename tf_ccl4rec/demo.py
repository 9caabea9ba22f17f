"""`make demo`: synthetic log -> TFX pipeline -> pushed model -> gRPC server -> recommend + predict.

Every step prints what it did and how long it took; a step that fails stops the demo with a
non-zero exit (nothing after it claims success).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from tf_ccl4rec._env import ensure_legacy_keras, quiet_import_warnings

ensure_legacy_keras()
quiet_import_warnings()

# The default preset (README "Model settings") with only the run's length bounded, so the demo
# stays within a few minutes on 2 CPU cores; early stopping usually ends it sooner.
DEMO_PIPELINE = {"preset": "default", "max_epochs": 4}


def _step(title):
    print(f"\n=== {title}", flush=True)
    return time.time()


def _done(start, what):
    print(f"--- {what} ({time.time() - start:.0f} s)", flush=True)


def make_data(out_dir):
    from tf_ccl4rec.data import synth

    data_dir = os.path.join(out_dir, "data")
    if os.path.exists(os.path.join(data_dir, "interactions.csv")):
        print(f"reusing {data_dir} (delete it to regenerate)")
        return data_dir
    stats = synth.synth(synth.SynthConfig(), data_dir)
    print(json.dumps(stats))
    return data_dir


def run_pipeline(data_dir, out_dir):
    from pipeline import local_runner
    from pipeline.configs import PipelineConfig

    config = PipelineConfig(
        data_root=data_dir, pipeline_root=os.path.join(out_dir, "pipeline"), **DEMO_PIPELINE
    )
    summary = local_runner.run(config)
    for line in summary.lines():
        print(f"  {line}")
    if not (summary.pushed or summary.already_serving):  # a rerun: already serving is fine
        raise SystemExit("demo: the model was not blessed, so nothing was pushed; see above")
    return config, summary


def serve_and_query(config):
    from serving.client import ServingClient

    base = os.path.join(config.serving_base, "ccl4rec")
    cmd = [sys.executable, "-m", "serving.server", "--model-base-path", base, "--port", "0"]
    print(f"$ ccl4rec serve --model-base-path {base} --port 0", flush=True)
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        target = None
        for line in server.stdout:  # bounded: the server prints READY or exits
            if line.startswith("READY "):
                target = line.split()[1]
                break
        if target is None:
            raise SystemExit(f"demo: the server exited ({server.wait()}) before it was ready")
        with ServingClient(target, "ccl4rec", timeout=60) as client:
            client.wait_ready(timeout=120)
            history = _a_real_click_history(config.data_root)
            ids, scores = client.recommend([history], k=10)
            print(f"recommend(click_history={history}, k=10) -> version {client.last_version}")
            for vid, score in zip(ids[0], scores[0], strict=True):
                print(f"  {vid:>10}  {score:.4f}")
            candidates = ids[0][:3] + history[:2]
            probs = client.predict([history], [candidates])
            print(f"predict(click_history=..., candidates={candidates})")
            for vid, p in zip(candidates, probs[0], strict=True):
                print(f"  {vid:>10}  {p:.4f}")
    finally:
        server.terminate()
        server.wait(timeout=60)
        print(f"server stopped (exit {server.returncode})")


def _a_real_click_history(data_dir, n=8):
    import pandas as pd

    log = pd.read_csv(os.path.join(data_dir, "interactions.csv"))
    user = log["user_id"].iloc[0]
    clicks = log[(log["user_id"] == user) & (log["click"] == 1)].sort_values("timestamp")
    return [str(v) for v in clicks["video_id"].tail(n)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_out")
    args = parser.parse_args(argv)
    total = time.time()
    start = _step("1/3 synthetic planted-noise log (ccl4rec data synth)")
    data_dir = make_data(args.out)
    _done(start, f"raw log in {data_dir}")
    start = _step("2/3 TFX pipeline (ccl4rec pipeline run)")
    config, _ = run_pipeline(data_dir, args.out)
    _done(start, "pipeline finished, model pushed")
    start = _step("3/3 gRPC server on the pushed model (ccl4rec serve) + requests")
    serve_and_query(config)
    _done(start, "served and queried over gRPC")
    print(f"\ndemo complete in {time.time() - total:.0f} s; outputs in {args.out}/")


if __name__ == "__main__":
    main()
