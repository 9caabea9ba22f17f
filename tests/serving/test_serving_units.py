"""Layout, models.config, the version manager (in-process) and the client CLI."""

import argparse
import json
import os

import numpy as np
import pytest
import toy_model
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import client_cli, layout
from serving import model_config as mc
from serving import signatures as sig
from serving.server import ModelServer
from serving.versions import ModelManager

MODEL = toy_model.MODEL_NAME


# --- layout -----------------------------------------------------------------------------------
def test_list_versions_ignores_temp_incomplete_and_non_integer_dirs(tmp_path):
    model_path = str(tmp_path / MODEL)
    for name, complete in (("1", True), ("7", True), ("3", False), (".tmp-9-x", True), ("a", True)):
        os.makedirs(os.path.join(model_path, name))
        if complete:
            open(os.path.join(model_path, name, layout.SAVED_MODEL_FILE), "wb").close()
    assert layout.list_versions(model_path) == [1, 7]
    assert layout.next_version(model_path) == 8
    assert layout.list_versions(str(tmp_path / "missing")) == []


@pytest.mark.parametrize("name", ["\u00b2", "\u0661", "007", "99999999999999999999", "old"])
def test_bad_version_names_are_ignored_not_errors(tmp_path, name):
    """ "²" and "١" pass str.isdigit but int("²") raises (it used to, on every poll); "007" would
    be version 7 in a directory version_dir does not name; 2**64 is not an int64 version."""
    model_path = str(tmp_path / MODEL)
    for d in ("2", name):
        os.makedirs(os.path.join(model_path, d))
        open(os.path.join(model_path, d, layout.SAVED_MODEL_FILE), "wb").close()
    assert layout.parse_version(name) is None
    assert layout.list_versions(model_path) == [2]
    assert layout.scan(model_path) == ([2], [name])
    assert layout.next_version(model_path) == 3


def test_atomic_version_dir_publishes_on_success_and_cleans_up_on_error(tmp_path):
    model_path = str(tmp_path / MODEL)
    with layout.atomic_version_dir(model_path, 4) as tmp:
        assert os.path.basename(tmp).startswith(layout.TEMP_PREFIX)
        open(os.path.join(tmp, layout.SAVED_MODEL_FILE), "wb").close()
        assert layout.list_versions(model_path) == []  # invisible while being written
    assert layout.list_versions(model_path) == [4]
    with pytest.raises(RuntimeError), layout.atomic_version_dir(model_path, 5) as tmp:
        open(os.path.join(tmp, layout.SAVED_MODEL_FILE), "wb").close()
        raise RuntimeError("export failed")
    assert sorted(os.listdir(model_path)) == ["4"]
    with pytest.raises(FileExistsError), layout.atomic_version_dir(model_path, 4):
        pass


# --- models.config ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,available,served",
    [
        ("latest:1", [1, 2, 5], [5]),
        ("latest:2", [1, 2, 5], [2, 5]),
        ("specific:1,5", [1, 2, 5], [1, 5]),
        ("specific:3", [1, 2], []),
        ("all", [2, 1], [1, 2]),
    ],
)
def test_version_policy_selects_and_roundtrips(text, available, served):
    policy = mc.parse_version_policy(text)
    assert policy.select(available) == served
    assert str(policy) == text
    assert mc.VersionPolicy.from_proto(policy.to_proto()) == policy


@pytest.mark.parametrize("bad", ["latest:0", "latest:x", "specific:", "newest:1", "all:2"])
def test_bad_version_policy_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="latest:N"):
        mc.parse_version_policy(bad)


def test_models_config_is_a_tf_serving_text_proto(tmp_path):
    path = mc.write_push_config(
        str(tmp_path), MODEL, "specific:3,4", mc.parse_labels("stable=3,canary=4")
    )
    assert path == str(tmp_path / mc.CONFIG_FILE)
    text = open(path).read()
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    model = parsed.model_config_list.config[0]
    assert (model.name, model.model_platform) == (MODEL, "tensorflow")
    assert model.base_path == str(tmp_path / MODEL)
    assert list(model.model_version_policy.specific.versions) == [3, 4]
    assert dict(model.version_labels) == {"stable": 3, "canary": 4}
    name, base, policy, labels = mc.single_model(mc.read_config(path))
    assert (name, base, str(policy), labels) == (MODEL, model.base_path, "specific:3,4", labels)


def test_push_config_can_name_the_servers_view_of_the_push_dir(tmp_path):
    path = mc.write_push_config(str(tmp_path), MODEL, server_push_base="/models")
    name, base, policy, _ = mc.single_model(mc.read_config(path))
    assert (name, base, str(policy)) == (MODEL, "/models/ccl4rec", "latest:1")


def test_bad_labels_and_config_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="name=version"):
        mc.parse_labels("stable:3")
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { nonsense: 1 }")
    with pytest.raises(ValueError, match="ModelServerConfig"):
        mc.read_config(str(bad))


# --- signatures helpers -----------------------------------------------------------------------
def test_pad_ids_pads_right_and_accepts_str_bytes_int():
    arr = sig.pad_ids([["a", b"b", 3], []], width=4)
    assert arr.tolist() == [[b"a", b"b", b"3", b""], [b"", b"", b"", b""]]
    assert sig.pad_ids([[], []]).shape == (2, 0)
    with pytest.raises(ValueError, match="width"):
        sig.pad_ids([["a", "b"]], width=1)
    with pytest.raises(TypeError, match="video ids"):
        sig.pad_ids([[1.5]])
    with pytest.raises(ValueError, match="k must be"):
        sig.recommend_inputs([["a"]], 0)


def test_contract_check_accepts_the_toy_export_and_names_what_breaks(tmp_path):
    path = toy_model.save_toy_model(str(tmp_path / "m"), 1, vocab_size=5)
    assert sig.validate_export(path) == []
    sdefs = dict(_signature_defs(path))
    del sdefs[sig.USER_EMBEDDING]
    sdefs[sig.RECOMMEND].inputs[sig.K].dtype = 9  # DT_INT64 instead of DT_INT32
    problems = sig.contract_violations(sdefs)
    assert len(problems) == 2
    assert "missing signature 'user_embedding'" in problems
    assert any(p.startswith("recommend: inputs") and "int64" in p for p in problems)


def _signature_defs(path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, layout.SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    return proto.meta_graphs[0].signature_def


# --- version manager (in-process, deterministic polls) ----------------------------------------
def test_manager_loads_only_settled_published_versions(tmp_path):
    base = str(tmp_path)
    model_path = layout.model_dir(base, MODEL)
    toy_model.write_version(base, 1, vocab_size=10)
    manager = ModelManager(MODEL, model_path, mc.parse_version_policy("latest:1"))
    manager.poll_once()
    assert manager.serving_versions == []  # seen once: not settled yet
    manager.poll_once()
    assert manager.serving_versions == [1]

    # A model in a temp dir (being written) is never loaded, however many polls see it.
    with layout.atomic_version_dir(model_path, 2) as tmp:
        toy_model.save_toy_model(tmp, 2, vocab_size=10)
        manager.poll_once()
        manager.poll_once()
        assert manager.serving_versions == [1]
    # A non-atomic copy whose files still change between polls waits until they stop changing.
    manager.poll_once()
    pb = os.path.join(model_path, "2", layout.SAVED_MODEL_FILE)
    os.utime(pb, ns=(0, os.stat(pb).st_mtime_ns + 10**9))  # "still being written"
    manager.poll_once()
    assert manager.serving_versions == [1]
    manager.poll_once()
    assert manager.serving_versions == [2]  # latest:1 swapped and unloaded 1
    states = {v: s.state for v, s in manager._status.items()}
    assert states == {1: 50, 2: 30}  # END, AVAILABLE


def test_manager_refuses_corrupt_version_and_retries_it_once_rewritten(tmp_path):
    base = str(tmp_path)
    model_path = layout.model_dir(base, MODEL)
    toy_model.write_version(base, 1, vocab_size=10)
    toy_model.write_corrupt_version(base, 2)
    manager = ModelManager(MODEL, model_path, mc.parse_version_policy("latest:1"))
    manager.poll_once()
    manager.poll_once()
    assert manager.serving_versions == [1]  # 2 refused, 1 serves
    assert manager._status[2].state == 50 and manager._status[2].error_message
    manager.poll_once()
    assert manager.serving_versions == [1]  # not retried while unchanged
    # The operator replaces the broken version in place: it is picked up once settled.
    os.remove(os.path.join(model_path, "2", layout.SAVED_MODEL_FILE))
    toy_model.save_toy_model(os.path.join(model_path, "2"), 2, vocab_size=10)
    manager.poll_once()
    manager.poll_once()
    assert manager.serving_versions == [2]


def test_manager_skips_bad_directory_names_with_one_warning_and_loads_new_versions(
    tmp_path, caplog
):
    base = str(tmp_path)
    model_path = layout.model_dir(base, MODEL)
    toy_model.write_version(base, 1, vocab_size=10)
    os.makedirs(os.path.join(model_path, "\u00b2"))  # "²": str.isdigit() is True, int() fails
    manager = ModelManager(MODEL, model_path, mc.parse_version_policy("latest:1"))
    with caplog.at_level("WARNING", logger="ccl4rec.serve"):
        manager.poll_once()
        manager.poll_once()
        assert manager.serving_versions == [1]
        toy_model.write_version(base, 2, vocab_size=10)  # a new version is not blocked
        manager.poll_once()
        manager.poll_once()
        assert manager.serving_versions == [2]
    warnings = [r.getMessage() for r in caplog.records if "not a version directory" in r.message]
    assert len(warnings) == 1 and "\u00b2" in warnings[0]  # one warning, not one per poll


# --- client CLI against an in-process server --------------------------------------------------
@pytest.fixture(scope="module")
def in_process_server(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("push"))
    toy_model.write_version(base, 3, vocab_size=20)
    server = ModelServer(base, MODEL, port=0, poll_seconds=60).start()
    yield server
    server.stop(0)


def _cli(command, argv):
    parser = argparse.ArgumentParser(prog=f"ccl4rec {command}")
    client_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    args.command = command
    return client_cli.run(args)


def test_cli_predict_and_recommend_print_json(in_process_server, capsys):
    target = f"127.0.0.1:{in_process_server.port}"
    assert (
        _cli("predict", ["--server", target, "--click-history", "v1,v2", "--candidates", "v3,zz"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == 3
    assert [p["video_id"] for p in out["predictions"]] == ["v3", "zz"]
    assert all(0 < p["probability"] < 1 for p in out["predictions"])
    assert _cli("recommend", ["--server", target, "--click-history", "v1,v2", "--k", "4"]) == 0
    recs = json.loads(capsys.readouterr().out)["recommendations"]
    ids = [r["video_id"] for r in recs]
    assert len(set(ids)) == 4 and not {"v1", "v2"} & set(ids)
    assert np.all(np.diff([r["score"] for r in recs]) <= 0)


def test_cli_errors_are_clear_and_nonzero(in_process_server, capsys):
    target = f"127.0.0.1:{in_process_server.port}"
    assert _cli("recommend", ["--server", target, "--k", "500"]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
    assert _cli("predict", ["--server", target, "--version", "9", "--candidates", "v1"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    assert _cli("predict", ["--server", target]) == 2
    assert "--candidates" in capsys.readouterr().err
