"""The two-stage `recommend` with a ScaNN stage 1 (retrieval_index="scann"), on a tiny catalogue.

Needs the optional scann package (`pip install '.[scann]'`, `make venv SCANN=1`); skipped with the
reason printed (pytest -ra) when it is not importable.
"""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_ccl4rec.export import export_serving_model
from tf_ccl4rec.testing import build_serving_model, vocabulary

try:
    import scann  # noqa: F401

    SCANN_ERROR = None
except ImportError as err:  # the optional extra is not installed
    SCANN_ERROR = f"scann not importable ({err}); install it with pip install '.[scann]'"

pytestmark = pytest.mark.skipif(SCANN_ERROR is not None, reason=str(SCANN_ERROR))

N = 8
K = 3
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWO_STAGE = {
    "retrieval_weight": 1.0,
    "item_bias": True,
    "retrieval_candidates": N,
    "retrieval_index": "scann",
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One trained model, exported with ScaNN (every leaf searched, then the default share) and
    with the exact BruteForce index."""
    workdir = tmp_path_factory.mktemp("scann")
    overrides = {**TWO_STAGE, "retrieval_leaves_searched": 1.0}
    scann_all, model, tft_output, _ = build_serving_model(
        str(workdir), model_overrides=overrides, train_steps=30
    )
    brute = export_serving_model(model, tft_output, str(workdir / "brute"), N, "brute_force")
    config = model.config
    model._ccl_config = dataclasses.replace(config, retrieval_leaves_searched=0.05)
    try:
        scann_few = export_serving_model(model, tft_output, str(workdir / "scann_few"))
    finally:
        model._ccl_config = config
    paths = {"scann_all": scann_all, "brute": brute, "scann_few": scann_few}
    return paths, model, vocabulary(tft_output)


def _histories(vocab):
    return [[vocab[0], vocab[1]], [], [vocab[5], "never-seen-id"], [vocab[-1]]]


def _pad(lists):
    width = max([len(x) for x in lists] + [1])
    return tf.constant([list(x) + [""] * (width - len(x)) for x in lists])


def _recommend(path, histories, k=K):
    out = tf.saved_model.load(path).signatures["recommend"](
        click_history=_pad(histories),
        nonclick_history=_pad([[]] * len(histories)),
        k=tf.constant(k),
    )
    return out["video_ids"].numpy().astype(str), out["scores"].numpy()


def test_scann_recommend_agrees_with_brute_force(exports):
    paths, _, vocab = exports
    histories = _histories(vocab)
    ids, scores = _recommend(paths["scann_all"], histories)
    want_ids, want_scores = _recommend(paths["brute"], histories)
    assert ids.shape == (len(histories), K)
    for user, history in enumerate(histories):
        assert set(ids[user]) <= set(vocab) - set(history), user  # real, unseen ids
        assert len(set(ids[user]) & set(want_ids[user])) >= K - 1, (ids[user], want_ids[user])
    np.testing.assert_allclose(np.sort(scores), np.sort(want_scores), atol=1e-2)


def test_scann_searching_few_leaves_still_returns_k_real_ids(exports):
    paths, _, vocab = exports
    histories = _histories(vocab)
    ids, scores = _recommend(paths["scann_few"], histories)
    for user, history in enumerate(histories):
        assert len(set(ids[user])) == K, ids[user]
        assert set(ids[user]) <= set(vocab) - set(history), user
        assert np.all(np.diff(scores[user]) <= 0)


LOAD_IN_A_SERVER_PROCESS = """
import json, sys
sys.modules["scann"] = None  # as if not installed
from serving.versions import load_version
try:
    load_version(sys.argv[1], 1)
    refused = ""
except ImportError as err:
    refused = str(err)
del sys.modules["scann"]
loaded = load_version(sys.argv[1], 1)
print(json.dumps({"refused": refused, "tfrs": "tensorflow_recommenders" in sys.modules,
                  "signatures": sorted(loaded.functions)}))
"""


def test_our_server_loads_scann_ops_for_a_scann_export(exports):
    """The server imports scann itself (it never imports TFRS, whose import would load the ops),
    and says what to install when scann is missing."""
    paths, _, _ = exports
    env = dict(os.environ, PYTHONPATH=REPO, TF_USE_LEGACY_KERAS="1")
    out = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_SERVER_PROCESS, paths["scann_all"]],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "scann" in result["refused"] and "pip install" in result["refused"]
    assert not result["tfrs"]
    assert "recommend" in result["signatures"]
