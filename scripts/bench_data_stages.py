"""Times the pipeline's data stages (ExampleGen + StatisticsGen + Transform) of checkouts, interleaved.

    python scripts/bench_data_stages.py --data ml_import --runs 3 HEAD_DIR [OLD_DIR ...]

Each run is ``ccl4rec pipeline run`` of that checkout (PYTHONPATH=<dir>, this interpreter) on a
fresh root, stopped once Transform has finished; the figures are the pipeline's own per-component
lines ("[7/13] Transform done in 14.8 s"). Checkouts alternate run by run, so a machine that slows
down or speeds up during the benchmark weighs on all of them alike; the medians and the ratio to
the first checkout are printed with the load average. Use a quiet machine.
"""

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

STAGES = ("CCL4RecExampleGen", "StatisticsGen", "Transform")
DONE = re.compile(r"\] (\S+) done in ([0-9.]+) s")


def run_once(code_dir: str, data: str, root: str, model: str) -> dict:
    """{stage: seconds} of one run of `code_dir`'s pipeline, stopped after Transform."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(code_dir), TF_USE_LEGACY_KERAS="1")
    cmd = [sys.executable, "-m", "tf_ccl4rec.cli", "pipeline", "run", "--data", data,
           "--root", root, "--model", model]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    seconds, tail = {}, collections.deque(maxlen=20)  # the last lines, for the error
    for line in proc.stdout:
        tail.append(line)
        match = DONE.search(line)
        if match and match.group(1) in STAGES:
            seconds[match.group(1)] = float(match.group(2))
            if match.group(1) == STAGES[-1]:
                break
    proc.kill()
    proc.wait()
    if set(seconds) != set(STAGES):
        raise RuntimeError(f"{code_dir}: the run ended before Transform:\n{''.join(tail)}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", help="source trees; the first is the reference")
    parser.add_argument("--data", required=True, help="raw-log directory (ccl4rec data import)")
    parser.add_argument("--runs", type=int, default=3, help="runs per checkout")
    parser.add_argument("--model", default="seed=0", help="--model of the pipeline run")
    args = parser.parse_args(argv)
    data = os.path.abspath(args.data)
    totals = {c: [] for c in args.checkouts}
    print(f"load average at start {os.getloadavg()[0]:.2f}", flush=True)
    for i in range(args.runs):
        for code in args.checkouts:
            root = tempfile.mkdtemp(prefix="data_stages_")
            try:
                t0 = time.time()
                s = run_once(code, data, root, args.model)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            totals[code].append(sum(s.values()))
            parts = " + ".join(f"{s[k]:.1f}" for k in STAGES)
            print(f"run {i + 1}/{args.runs} {code}: {parts} = {totals[code][-1]:.1f} s "
                  f"({time.time() - t0:.0f} s wall)", flush=True)  # fmt: skip
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    reference = statistics.median(totals[args.checkouts[0]])
    print(f"{'checkout':<40} {'median s':>9} {'min-max':>13} {'x first':>8}")
    for code, values in totals.items():
        median = statistics.median(values)
        spread = f"{min(values):.1f}-{max(values):.1f}"
        print(f"{code:<40} {median:>9.1f} {spread:>13} {median / reference:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
