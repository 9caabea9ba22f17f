"""Request limits and recommend's k, against an in-process server on the toy model.

Each test failed on the server before the limits: it answered any history length, any number of
candidates and k above what the model can fill (with "" ids and score 0), and took 64 MiB messages.
"""

import grpc
import numpy as np
import pytest
import toy_model
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import errors
from serving import signatures as sig
from serving.client import ServingClient, ServingError
from serving.limits import RequestLimits
from serving.server import ModelServer, add_arguments

MODEL = toy_model.MODEL_NAME
VOCAB = 20
LIMITS = {"max_batch": 4, "max_history": 5, "max_candidates": 12, "max_message_bytes": 32 * 1024}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("push"))
    toy_model.write_version(base, 1, vocab_size=VOCAB)
    server = ModelServer(base, MODEL, port=0, poll_seconds=60, **LIMITS).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


@pytest.fixture(scope="module")
def default_target(tmp_path_factory):
    """A server with the default limits (so k is limited only by the catalogue)."""
    base = str(tmp_path_factory.mktemp("push"))
    toy_model.write_version(base, 1, vocab_size=VOCAB)
    server = ModelServer(base, MODEL, port=0, poll_seconds=60).start()
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


@pytest.fixture()
def client(target):
    with ServingClient(target, MODEL, timeout=30) as c:
        yield c


def _refused(call, *words, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(ServingError) as err:
        call()
    assert err.value.code == code, err.value.details
    for word in words:
        assert word in err.value.details, err.value.details
    return err.value.details


def _ids(n, start=1):
    return [f"v{(start + i) % VOCAB + 1}" for i in range(n)]


def test_history_at_the_limit_is_served_and_longer_is_refused_not_truncated(client):
    assert client.predict([_ids(5)], [["v9"]], [_ids(5)]).shape == (1, 1)
    _refused(lambda: client.predict([_ids(6)], [["v9"]]), "click_history", "--max-history", "6")
    _refused(
        lambda: client.predict([["v1"]], [["v9"]], [_ids(6)]), "nonclick_history", "--max-history"
    )
    # The width of the tensor counts (what the request costs), padding included.
    padded = sig.predict_inputs([_ids(6), ["v1"]], [["v9"], ["v9"]])
    _refused(lambda: client.predict_raw(sig.PREDICT, padded), "--max-history")
    _refused(lambda: client.recommend([_ids(6)], k=1), "--max-history")
    _refused(lambda: client.user_embedding([_ids(6)]), "--max-history")


def test_history_limit_applies_inside_tf_examples(client):
    ok = sig.make_example("v1", _ids(5), _ids(5))
    long = sig.make_example("v1", _ids(6))
    assert client.classify([ok]).shape == (1, 1)
    _refused(lambda: client.classify([ok, long]), "click_history of example 1", "--max-history")
    serialized = np.array([long.SerializeToString()], dtype=object)
    _refused(lambda: client.predict_raw(sig.SERVING_DEFAULT, {sig.EXAMPLES: serialized}), "--max")


def test_candidates_per_request_are_capped_for_predict_and_recommend(client):
    assert client.predict([["v1"]] * 4, [_ids(3)] * 4).shape == (4, 3)  # 12 = the limit
    _refused(lambda: client.predict([["v1"]] * 4, [_ids(4)] * 4), "16", "--max-candidates")
    _refused(lambda: client.predict([["v1"]], [_ids(13)]), "13", "--max-candidates")
    ids, _ = client.recommend([["v1"]] * 4, k=3)
    assert np.array(ids).shape == (4, 3)
    _refused(lambda: client.recommend([["v1"]] * 4, k=4), "k=4", "--max-candidates")


def test_users_per_request_are_capped(client):
    assert client.predict([["v1"]] * 4, [["v2"]] * 4).shape == (4, 1)
    _refused(lambda: client.predict([["v1"]] * 5, [["v2"]] * 5), "batch size 4")
    _refused(lambda: client.classify([sig.make_example("v1")] * 5), "batch size 4")


def test_oversize_message_is_refused_by_grpc_and_server_keeps_answering(target, client):
    big = sig.predict_inputs([["x" * 40_000]], [["v1"]])  # one 40 kB id: > 32 KiB message
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(sig.make_predict_request(MODEL, sig.PREDICT, big), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value.details()
    assert client.predict([["v1"]], [["v2"]]).shape == (1, 1)


def test_recommend_answers_exactly_k_real_ids_or_refuses(default_target):
    """Decision: recommend returns exactly k real ids per user, or INVALID_ARGUMENT. A k above
    what the model can fill (the catalogue minus the user's clicks) used to come back OK with ""
    ids and score 0 in the places it could not fill."""
    client = ServingClient(default_target, MODEL, timeout=30)
    clicked = [["v1", "v2"], []]
    unseen = VOCAB - 2  # the first user's bound
    ids, scores = client.recommend(clicked, k=3)
    ids, scores = client.recommend([clicked[0]], k=unseen)
    assert len(set(ids[0])) == unseen and "" not in ids[0] and np.all(scores > 0)
    for k in (unseen + 1, VOCAB, VOCAB + 5, 10_000):
        message = _refused(lambda k=k: client.recommend(clicked, k=k), f"k={k}")
        assert f"k <= {unseen}" in message
    client.close()


def test_limits_are_validated_and_are_cli_flags():
    import argparse

    with pytest.raises(ValueError, match="max_history"):
        RequestLimits(max_history=0)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--max-history", "7", "--max-message-bytes", "1000"])
    assert (args.max_batch, args.max_history, args.max_candidates) == (1024, 7, 100_000)
    assert args.max_message_bytes == 1000
    assert parser.parse_args([]).max_message_bytes == 4 * 1024 * 1024
    assert parser.parse_args([]).max_inflight_bytes == 4 * 1024 * 1024


def test_byte_budget_runs_large_requests_one_at_a_time_and_times_out():
    import threading
    import time

    from serving.memory import ByteBudget

    budget = ByteBudget(100)
    running, peak, lock = [0], [0], threading.Lock()

    def request(size):
        with budget.hold(size, timeout=30):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=request, args=(80,)) for _ in range(4)]
    threads += [threading.Thread(target=request, args=(500,))]  # over capacity: runs alone
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1 and budget.used == 0
    with budget.hold(60):  # two small ones fit together
        with budget.hold(40, timeout=1):
            assert budget.used == 100
        with pytest.raises(errors.ServingError) as err, budget.hold(50, timeout=0.1):
            pass
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert budget.used == 0
