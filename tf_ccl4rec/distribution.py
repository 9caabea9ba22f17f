"""Which tf.distribute strategy the Trainer runs under, and the multi-worker chores around it.

Strategy (`choose_strategy`, ``TrainerSettings.distribution``):

- ``auto`` (the default): `MultiWorkerMirroredStrategy` when ``TF_CONFIG`` names more than one
  worker (Vertex AI Training and Kubeflow's TFJob set ``TF_CONFIG`` in every replica of a
  multi-replica job), else `MirroredStrategy` over the local GPUs when there are any, else the
  default (one-device) strategy.
- ``multi_worker``: `MultiWorkerMirroredStrategy` whatever ``TF_CONFIG`` says (one worker without
  it: the same as one device, useful to test the code path).
- ``mirrored``: `MirroredStrategy` over the local GPUs (the CPUs when there is no GPU).
- ``default``: one device.

Batches. ``config.batch_size`` is the **per-replica** batch; the Trainer feeds Keras the global
batch ``batch_size * strategy.num_replicas_in_sync`` (replicas = workers x local devices), and
Keras splits each global batch between the replicas. A 2-worker job with ``batch_size`` 128
therefore takes steps of 256 rows, the same steps as one process with ``batch_size`` 256 (which
is what `tests/pipeline/test_multi_worker.py` checks). Steps per epoch are counted in global
batches, so an epoch is still one pass over the rows.

Sharding. Every worker reads every training file (a TFX Trainer gets file patterns, and the
Transform output is a handful of files, fewer than workers on small data); `shard_by_data` sets
tf.data's auto-shard policy to DATA, so each worker builds the same global batches and keeps its
replicas' slices of them. `shard_explicitly` is the alternative for inputs made of many files
(each worker reads its own files; nothing is read twice; batches then differ from one process's).

Export. Saving a model under MultiWorkerMirroredStrategy may run collective ops, so every worker
saves; only the chief's copy is kept (`export_dir`), the others write to a temporary directory
that `remove_worker_copy` deletes: TensorFlow's documented pattern.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import tensorflow as tf

from tf_ccl4rec.training_settings import DISTRIBUTIONS

log = logging.getLogger(__name__)
# Task types that hold a replica of the model in a multi-worker job ("master" is TF1 / old
# AI Platform's name for the chief; Vertex AI uses "workerpool0" only inside CLUSTER_SPEC).
_REPLICA_TASKS = ("chief", "master", "worker")


def tf_config(environ=None) -> dict:
    """``TF_CONFIG`` parsed ({} when unset or empty); a malformed value raises ValueError."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not JSON: {err}: {text[:200]!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {text[:200]!r}")
    return value


def num_workers(config: dict) -> int:
    """Training replicas (chief + workers) in a parsed ``TF_CONFIG``; 0 without a cluster."""
    cluster = config.get("cluster") or {}
    return sum(len(cluster.get(t) or []) for t in _REPLICA_TASKS)


def task(config: dict) -> tuple[str, int]:
    """(task type, index) of this process; ("worker", 0) without ``TF_CONFIG``."""
    t = config.get("task") or {}
    return str(t.get("type", "worker")), int(t.get("index", 0))


def is_chief(config: dict) -> bool:
    """Whether this process writes the exported model: the "chief"/"master" task, or worker 0
    of a cluster without one (TensorFlow's rule for MultiWorkerMirroredStrategy)."""
    task_type, index = task(config)
    if task_type in ("chief", "master"):
        return True
    cluster = config.get("cluster") or {}
    has_chief = any(cluster.get(t) for t in ("chief", "master"))
    return task_type == "worker" and index == 0 and not has_chief


def strategy_kind(distribution: str, config: dict, num_gpus: int) -> str:
    """Which strategy `choose_strategy` makes: "multi_worker", "mirrored" or "default".

    Pure (no TensorFlow state), so the choice is unit-tested from ``TF_CONFIG`` values.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "multi_worker":
        return "multi_worker"
    if distribution == "mirrored":
        return "mirrored"
    if distribution == "default":
        if num_workers(config) > 1:
            raise ValueError(
                f"distribution 'default' trains in one process, but TF_CONFIG names "
                f"{num_workers(config)} workers: every worker would train its own model. Use "
                "'auto' or 'multi_worker'."
            )
        return "default"
    if num_workers(config) > 1:
        return "multi_worker"
    return "mirrored" if num_gpus else "default"


def choose_strategy(distribution: str = "auto", environ=None) -> tf.distribute.Strategy:
    """The strategy for ``distribution`` (module docstring); prints which, with the cluster."""
    config = tf_config(environ)
    # Physical devices: listing logical ones would start the runtime, after which the
    # multi-worker strategy can no longer configure its collective ops.
    kind = strategy_kind(distribution, config, len(tf.config.list_physical_devices("GPU")))
    if kind == "multi_worker":
        task_type, index = task(config)
        # The communication choice: NCCL between GPUs, rings on CPUs (AUTO picks it).
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            raise RuntimeError(
                f"{err}: the multi-worker strategy must be made before this process runs any "
                "TensorFlow op (choose_strategy first, then read data / build models)"
            ) from err
        print(
            f"trainer: MultiWorkerMirroredStrategy over {max(1, num_workers(config))} workers "
            f"({strategy.num_replicas_in_sync} replicas); this is {task_type} {index}"
            f"{' (chief)' if is_chief(config) else ''}",
            flush=True,
        )
        return strategy
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        log.info("Training with MirroredStrategy on %s", devices)
        print(f"trainer: MirroredStrategy over {len(devices)} devices: {devices}", flush=True)
        return strategy
    print("trainer: no GPU visible; default (single-device) strategy", flush=True)
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def strategy_is_chief(strategy, environ=None) -> bool:
    """Whether this process keeps what it writes (always, outside a multi-worker job)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True  # one worker without TF_CONFIG
    return is_chief({"cluster": resolver.cluster_spec().as_dict(),
                     "task": {"type": resolver.task_type, "index": resolver.task_id}})  # fmt: skip


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's DATA auto-shard policy: every worker reads all input and keeps
    its share of each global batch (no effect outside a multi-worker strategy)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def shard_explicitly(files: list[str], config: dict | None = None) -> list[str]:
    """This worker's share of ``files`` (every n-th, by task index among the replicas), for
    inputs of many files where reading everything on every worker would waste I/O; pair it with
    the auto-shard policy OFF. Without a cluster, all files."""
    config = tf_config() if config is None else config
    n = num_workers(config)
    if n <= 1:
        return list(files)
    task_type, index = task(config)
    cluster = config.get("cluster") or {}
    has_chief = any(cluster.get(t) for t in ("chief", "master"))
    # Replica order: the chief first, then the workers by index.
    rank = 0 if task_type in ("chief", "master") else index + (1 if has_chief else 0)
    mine = sorted(files)[rank::n]
    if not mine:
        raise ValueError(f"{len(files)} input files for {n} workers: worker {rank} has none")
    return mine


def export_dir(path: str, chief: bool) -> str:
    """Where this process writes a model meant for ``path``: ``path`` on the chief, a fresh
    temporary directory on the other workers (deleted by `remove_worker_copy`)."""
    if chief:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="ccl4rec-worker-export-"), "model")


def remove_worker_copy(written: str, path: str) -> None:
    """Deletes a non-chief worker's copy (`export_dir` returned something else than ``path``)."""
    if written != path:
        shutil.rmtree(os.path.dirname(written), ignore_errors=True)


def per_replica(mean_loss: tf.Tensor) -> tf.Tensor:
    """A batch-mean loss as one replica's share: replicas' gradients are summed, so each mean over
    its slice of the global batch is divided by the replica count (a mean over the global batch).
    A loss that is a sum over rows (the per-batch embedding L2) needs no scaling: its per-replica
    sums add up to the global batch's."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return mean_loss / replicas if replicas > 1 else mean_loss


class ReplicaScaledTrainStep:
    """Mixin for a `tfrs.models.Model`: TFRS's train_step adds the layers' regularization losses
    (kernel L2) whole on every replica, so with R replicas their gradient counted R times. This is
    TFRS's train_step with them divided by R, as Keras' own compiled losses do."""

    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self.compute_loss(inputs, training=True)
            regularization_loss = tf.reduce_sum([tf.reduce_sum(x) for x in self.losses])
            total_loss = loss + regularization_loss / replicas
        gradients = tape.gradient(total_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables, strict=True))
        metrics = {metric.name: metric.result() for metric in self.metrics}
        metrics["loss"] = loss
        metrics["regularization_loss"] = regularization_loss
        metrics["total_loss"] = loss + regularization_loss
        return metrics
