"""Strategy choice from TF_CONFIG, chief rule, explicit sharding, chief-only export (no cluster)."""

import json
import os

import pytest

from tf_ccl4rec import distribution as D
from tf_ccl4rec.training_settings import TrainerSettings


def _config(workers=2, task_type="worker", index=0, chief=False):
    cluster = {"worker": [f"host{i}:2222" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["chief0:2222"]
    return {"cluster": cluster, "task": {"type": task_type, "index": index}}


def test_tf_config_parsing():
    assert D.tf_config({}) == {}
    assert D.tf_config({"TF_CONFIG": "  "}) == {}
    config = _config()
    assert D.tf_config({"TF_CONFIG": json.dumps(config)}) == config
    with pytest.raises(ValueError, match="not JSON"):
        D.tf_config({"TF_CONFIG": "{cluster"})
    with pytest.raises(ValueError, match="JSON object"):
        D.tf_config({"TF_CONFIG": "[1]"})


@pytest.mark.parametrize(
    "distribution, config, gpus, expected",
    [
        ("auto", {}, 0, "default"),
        ("auto", {}, 2, "mirrored"),
        ("auto", _config(workers=1), 0, "default"),  # one worker: nothing to coordinate
        ("auto", _config(workers=1), 4, "mirrored"),
        ("auto", _config(workers=2), 0, "multi_worker"),
        ("auto", _config(workers=2), 8, "multi_worker"),
        ("auto", _config(workers=1, chief=True), 0, "multi_worker"),  # chief + 1 worker
        # Evaluators and parameter servers are not training replicas.
        ("auto", {"cluster": {"worker": ["a:1"], "evaluator": ["b:1"]}}, 0, "default"),
        ("multi_worker", {}, 0, "multi_worker"),
        ("mirrored", {}, 0, "mirrored"),
        ("default", {}, 3, "default"),
    ],
)
def test_strategy_kind(distribution, config, gpus, expected):
    assert D.strategy_kind(distribution, config, gpus) == expected


def test_default_distribution_refuses_a_cluster():
    with pytest.raises(ValueError, match="every worker would train its own model"):
        D.strategy_kind("default", _config(workers=3), 0)
    with pytest.raises(ValueError, match="distribution must be one of"):
        D.strategy_kind("tpu", {}, 0)


def test_trainer_settings_accept_multi_worker():
    assert TrainerSettings(distribution="multi_worker").distribution == "multi_worker"
    with pytest.raises(ValueError, match="distribution must be one of"):
        TrainerSettings(distribution="multiworker")


@pytest.mark.parametrize(
    "config, chief",
    [
        ({}, True),  # no cluster: the only process
        (_config(index=0), True),  # worker 0 without a chief task (Vertex AI's layout)
        (_config(index=1), False),
        (_config(index=0, chief=True), False),  # a chief task exists: worker 0 is not it
        (_config(task_type="chief", index=0, chief=True), True),
        ({"cluster": {"master": ["m:1"], "worker": ["w:1"]}, "task": {"type": "master"}}, True),
    ],
)
def test_is_chief(config, chief):
    assert D.is_chief(config) is chief


def test_shard_explicitly_gives_every_file_to_exactly_one_worker():
    files = [f"part-{i:02d}.gz" for i in range(7)]
    shares = [D.shard_explicitly(files, _config(workers=3, index=i)) for i in range(3)]
    assert sorted(sum(shares, [])) == files
    assert [len(s) for s in shares] == [3, 2, 2]
    # With a chief task, the chief is replica 0 and worker i is replica i + 1.
    chief_share = D.shard_explicitly(files, _config(workers=2, task_type="chief", chief=True))
    worker_share = D.shard_explicitly(files, _config(workers=2, index=0, chief=True))
    assert chief_share == files[0::3] and worker_share == files[1::3]
    assert D.shard_explicitly(files, {}) == files
    with pytest.raises(ValueError, match="has none"):
        D.shard_explicitly(["one.gz"], _config(workers=2, index=1))


def test_non_chief_export_goes_to_a_removed_temporary_directory(tmp_path):
    target = str(tmp_path / "serving")
    assert D.export_dir(target, chief=True) == target
    written = D.export_dir(target, chief=False)
    assert written != target and not written.startswith(str(tmp_path))
    os.makedirs(written)
    D.remove_worker_copy(written, target)
    assert not os.path.exists(os.path.dirname(written))
    D.remove_worker_copy(target, target)  # the chief's copy stays (nothing to remove)


def test_choose_strategy_without_a_cluster_is_one_device():
    import tensorflow as tf

    strategy = D.choose_strategy("auto", environ={})
    assert strategy.num_replicas_in_sync == 1
    assert not D.is_multi_worker(strategy) and D.strategy_is_chief(strategy)
    dataset = D.shard_by_data(tf.data.Dataset.range(4))
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA
