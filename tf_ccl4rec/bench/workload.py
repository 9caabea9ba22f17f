"""What `ccl4rec bench train|infer` measures: settings, models, synthetic batches, one worker.

Every (model, setting, mode) runs in its own subprocess (`python -m tf_ccl4rec.bench.workload`)
so that its peak RSS (ru_maxrss) is its own; the worker prints one `RESULT <json>` line. The
matmul peak of the machine is measured by the same worker in mode "peak".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from tf_ccl4rec._env import ensure_legacy_keras, quiet_import_warnings

ensure_legacy_keras()
quiet_import_warnings()

import numpy as np  # noqa: E402

from tf_ccl4rec.training_settings import TrainerSettings  # noqa: E402

# Paper §4.1: d 128, N 160, Np = Nn = 4, Nz 10,000, batch 32 (CCL4RecConfig's defaults); a
# vocabulary twice Nz so substitutes are a real sample. "paper" draws every row's history on its
# own; "paper-users" has the Trainer's batch shape (`synthetic_batches`). Demo: the default preset
# on the synthetic generator's catalogue. "tiny" exists for the smoke tests only.
SETTINGS = {
    "paper": {"model": {"vocab_size": 20_000}, "content": False},
    "paper-users": {"model": {"vocab_size": 20_000}, "content": False, "histories": "users"},
    "demo": {"model": "demo", "content": True},
    "tiny": {
        "model": {
            "vocab_size": 300, "max_history": 12, "embedding_dim": 8, "num_substitutes": 60,
            "mlp_units": [16, 8], "num_positives": 2, "num_negatives": 2,
        },
        "content": False,
    },
}  # fmt: skip
MODELS = ("ccl4rec", "ccl4rec_ce", "atrank", "lstm")
# The CE-only ablation: L_ce alone (no augmentation, no L_cui), the cost of the contrast.
CE_ONLY = {
    "use_ccl": False, "use_ccl_pos": False, "use_ccl_neg": False,
    "use_ce_pos": False, "use_ce_neg": False, "use_cui": False,
}  # fmt: skip
ROWS_PER_USER = TrainerSettings.rows_per_user  # impressions per user in a batch, as the Trainer


def model_values(setting: str, model: str) -> dict:
    """CCL4RecConfig values of `model` at `setting`."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; expected one of {sorted(SETTINGS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    spec = SETTINGS[setting]["model"]
    if spec == "demo":
        from tf_ccl4rec.config import PRESET_MAX_HISTORY, PRESETS
        from tf_ccl4rec.data.synth import SynthConfig

        synth = SynthConfig()  # the demo's data: the default preset with its feature table
        values = dict(
            PRESETS["default"],
            video_representation="both",
            max_history=PRESET_MAX_HISTORY["default"],
            vocab_size=synth.videos,
            content_feature_dim=synth.feature_dim,
        )
    else:
        values = dict(spec)
    if model == "ccl4rec_ce":
        values.update(CE_ONLY)
    return values


def build(setting: str, model: str):
    """(compiled model, CCL4RecConfig, content table or None) for one benchmark cell."""
    import tensorflow as tf

    from tf_ccl4rec import model_registry
    from tf_ccl4rec.config import CCL4RecConfig

    values = model_values(setting, model)
    config = CCL4RecConfig.from_dict(values)
    content = None
    if config.video_representation != "id":
        rng = np.random.default_rng(0)
        content = rng.normal(size=(config.num_embeddings, config.content_feature_dim))
        content[0] = 0.0
        content = content.astype(np.float32)
    model_type = "ccl4rec" if model.startswith("ccl4rec") else model
    # Baselines read the keys they share with CCL4RecConfig and ignore the rest.
    keras_model = model_registry.build_model(model_type, config.to_dict(), content)
    keras_model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    return keras_model, config, model_type


def synthetic_batches(
    config, batch_size: int, count: int = 4, seed: int = 0, histories: str = "independent"
) -> list[dict]:
    """`count` batches of full-length histories, ROWS_PER_USER impressions per user.

    histories "independent": every row's click history is drawn on its own (no item shared
    between rows but by chance). "users": as the Trainer's batches (`batching.group_by_user`),
    a user's rows are consecutive exposures, so row r of a user sees the user's clicks up to its
    own exposure: the window [r, r + N) of one stream of N + ROWS_PER_USER - 1 clicks (every
    earlier exposure of the window a click: the most distinct items such a batch can hold).
    """
    from tf_ccl4rec import features as F

    if histories not in ("independent", "users"):
        raise ValueError(f"histories must be 'independent' or 'users', got {histories!r}")
    rng = np.random.default_rng(seed)
    length = config.max_history
    history = (batch_size, length)
    out = []
    for i in range(count):
        users = np.arange(batch_size) // ROWS_PER_USER + i * batch_size
        if histories == "independent":
            clicks = rng.integers(1, config.vocab_size + 1, history, dtype=np.int64)
        else:
            user = users - users.min()
            streams = rng.integers(
                1, config.vocab_size + 1, (user.max() + 1, length + ROWS_PER_USER - 1),
                dtype=np.int64,
            )  # fmt: skip
            offset = np.arange(batch_size) % ROWS_PER_USER
            clicks = streams[user[:, None], offset[:, None] + np.arange(length)]
        batch = {
            F.MODEL_CLICK_HISTORY: clicks,
            F.MODEL_TARGET: rng.integers(1, config.vocab_size + 1, batch_size, dtype=np.int64),
            F.MODEL_LABEL: rng.integers(0, 2, batch_size).astype(np.float32),
            F.MODEL_USER: users.astype(np.int64),
        }
        # The inputs only some configs read (the demo's wide logit), drawn after the others so
        # that the batches of the paper setting stay the same.
        if config.reads_nonclick_history:
            batch[F.MODEL_NONCLICK_HISTORY] = rng.integers(
                1, config.vocab_size + 1, history, dtype=np.int64
            )
        if config.history_statistics:
            for name in (F.MODEL_CLICK_COUNT, F.MODEL_NONCLICK_COUNT, F.MODEL_RECENT_CLICK_COUNT):
                batch[name] = rng.integers(0, 2 * config.max_history, batch_size).astype(np.float32)
        out.append(batch)
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_matmul_peak(size: int = 2048, chain: int = 10, repeats: int = 5) -> dict:
    """float32 matmul throughput of a tf.function loop of [size, size] products, all cores.

    Returns:
      Dict with "gflops" (best of `repeats`), "size" and "seconds" per repeat.
    """
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size]) / size**0.5

    @tf.function(autograph=False)
    def loop(x):
        for _ in range(chain):
            x = tf.matmul(x, b)
        return tf.reduce_sum(x)

    loop(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop(a).numpy()
        times.append(time.perf_counter() - start)
    flop = chain * 2 * size**3
    return {"gflops": flop / min(times) / 1e9, "size": size, "seconds": times}


def run_train(setting: str, model: str, steps: int, warmup: int, batch_size: int) -> dict:
    """Times `steps` optimizer steps after `warmup` (tf.function train step, prefetched data)."""
    import tensorflow as tf

    from tf_ccl4rec import features as F
    from tf_ccl4rec.bench import flops

    keras_model, config, model_type = build(setting, model)
    if model_type == "ccl4rec":
        keras_model.training_progress.assign(0.5)  # mid-schedule: both sampling components
    batches = synthetic_batches(
        config, batch_size, histories=SETTINGS[setting].get("histories", "independent")
    )
    # Eq 3 runs on the distinct items of a batch's click histories (aug.distinct_rows).
    relatedness_rows = float(np.mean([len(np.unique(b[F.MODEL_CLICK_HISTORY])) for b in batches]))
    dataset = (
        tf.data.Dataset.from_tensor_slices(
            {k: np.stack([b[k] for b in batches]) for k in batches[0]}
        )
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    iterator = iter(dataset)
    train_step = keras_model.make_train_function()
    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        float(train_step(iterator)["loss"])
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = float(train_step(iterator)["loss"])
        times.append(time.perf_counter() - start)
    if not np.isfinite(loss):
        raise RuntimeError(f"{model} at {setting}: the loss is {loss}")
    count = flops.for_model(
        model_type, _flop_config(model_type, config), batch_size, True, relatedness_rows
    )
    step_s = float(np.mean(times))
    return {
        "relatedness_rows": relatedness_rows,
        "ms_per_step": 1000 * step_s,
        "ms_per_step_p50": 1000 * float(np.median(times)),
        "impressions_per_s": batch_size / step_s,
        "warmup_s": warmup_s,
        "gflop_per_step": count.train_step / 1e9,
        "achieved_gflops": count.train_step / step_s / 1e9,
        "flops": count.to_dict(),
        "final_loss": loss,
        **_common(keras_model, batch_size, steps, warmup),
    }


def run_infer(setting: str, model: str, steps: int, warmup: int, batch_size: int) -> dict:
    """Latency of model(features) on one batch (a tf.function, as the serving signature is)."""
    import tensorflow as tf

    from tf_ccl4rec import features as F
    from tf_ccl4rec.bench import flops

    keras_model, config, model_type = build(setting, model)
    batch = synthetic_batches(config, batch_size, count=1)[0]
    names = (F.MODEL_CLICK_HISTORY, F.MODEL_TARGET)
    if model_type == "ccl4rec":
        from tf_ccl4rec.model import feature_specs

        names = tuple(feature_specs(config))
    inputs = {k: tf.constant(batch[k]) for k in names}
    predict = tf.function(lambda x: keras_model(x, training=False), autograph=False)
    for _ in range(max(1, warmup)):
        predict(inputs).numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        out = predict(inputs).numpy()
        times.append(time.perf_counter() - start)
    if not np.all(np.isfinite(out)):
        raise RuntimeError(f"{model} at {setting}: non-finite predictions")
    count = flops.for_model(model_type, _flop_config(model_type, config), batch_size, False)
    ms = 1000 * np.asarray(times)
    return {
        "infer_ms_p50": float(np.percentile(ms, 50)),
        "infer_ms_p99": float(np.percentile(ms, 99)),
        "infer_ms_mean": float(ms.mean()),
        "impressions_per_s": batch_size / float(np.mean(times)),
        "gflop_per_batch": count.forward / 1e9,
        "achieved_gflops": count.forward / float(np.mean(times)) / 1e9,
        "flops": count.to_dict(),
        **_common(keras_model, batch_size, steps, warmup),
    }


def _flop_config(model_type, config):
    if model_type == "ccl4rec":
        return config
    from tf_ccl4rec.baselines import BaselineConfig

    return BaselineConfig(
        embedding_dim=config.embedding_dim,
        max_history=config.max_history,
        mlp_units=config.mlp_units,
    )


def _common(keras_model, batch_size, steps, warmup) -> dict:
    return {
        "parameters": keras_model.parameter_counts(),
        "peak_rss_mb": peak_rss_mb(),
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
    }


def run_in_subprocess(mode: str, **kwargs) -> dict:
    """Runs one worker in a fresh Python process and returns its RESULT (raises on failure)."""
    cmd = [sys.executable, "-m", "tf_ccl4rec.bench.workload", "--mode", mode]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-15:])
    raise RuntimeError(f"bench worker {' '.join(cmd[3:])} failed (exit {proc.returncode}):\n{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tf_ccl4rec.bench.workload")
    parser.add_argument("--mode", choices=("train", "infer", "peak"), required=True)
    parser.add_argument("--setting", default="paper")
    parser.add_argument("--model", default="ccl4rec")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--peak-size", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.mode == "peak":
        result = measure_matmul_peak(args.peak_size)
    else:
        run = run_train if args.mode == "train" else run_infer
        result = run(args.setting, args.model, args.steps, args.warmup, args.batch_size)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
