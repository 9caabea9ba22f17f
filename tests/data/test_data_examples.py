"""The Beam example builder: hand-checked examples, leak-free histories, splits, bad rows."""

import os

import numpy as np
import pytest
from data_helpers import write_log

from tf_ccl4rec import features as F
from tf_ccl4rec.data import examples, quality, raw_log
from tf_ccl4rec.data.raw_log import Interaction

# A hand-checked log. u1 has a tie at t=200 (b, c): neither is in the other's history.
HEADER = ["user_id", "video_id", "timestamp", "click", "category"]
ROWS = [
    ["u1", "d", 300, 1, "c1"],  # rows out of time order on purpose
    ["u1", "a", 100, 1, "c1"],
    ["u1", "b", 200, 0, "c2"],
    ["u1", "c", 200, 1, "c1"],
    ["u1", "e", 400, 0, "c2"],
    ["u2", "a", 50, 0, ""],
    ["u2", "b", 60, 1, ""],
]


def _ex(user, video, ts, label, clicks, nonclicks, counts, category=None, buckets=None):
    """``counts``: the uncut (clicks, non-clicks) before the exposure, hand-counted; fewer than
    RECENT_WINDOW (10) exposures here, so the recent click count is the click count."""
    out = {
        F.USER_ID: [user.encode()],
        F.VIDEO_ID: [video.encode()],
        F.TIMESTAMP: [ts],
        F.LABEL: [label],
        F.CLICK_HISTORY: [v.encode() for v in clicks],
        F.NONCLICK_HISTORY: [v.encode() for v in nonclicks],
        F.CLICK_COUNT: [counts[0]],
        F.NONCLICK_COUNT: [counts[1]],
        F.RECENT_CLICK_COUNT: [counts[0]],
    }
    if category:
        out[F.CATEGORY] = [category.encode()]
    if buckets:  # (user activity, video popularity): the Beam builder adds them
        out[F.USER_ACTIVITY_BUCKET] = [buckets[0].encode()]
        out[F.VIDEO_POPULARITY_BUCKET] = [buckets[1].encode()]
    return out


def _with_buckets(ex, video_train_counts):
    """Hand-derived slice buckets: u1 has 4 training exposures, u2 has 2."""
    n_user = {b"u1": 4, b"u2": 2}[ex[F.USER_ID][0]]
    n_video = video_train_counts.get(ex[F.VIDEO_ID][0].decode(), 0)
    video_bucket = F.bucket_label(n_video, F.POPULARITY_BUCKET_EDGES).encode()
    return {
        **ex,
        F.USER_ACTIVITY_BUCKET: [F.bucket_label(n_user, F.ACTIVITY_BUCKET_EDGES).encode()],
        F.VIDEO_POPULARITY_BUCKET: [video_bucket],
        F.USER_IN_VIDEO_BUCKET: [ex[F.USER_ID][0] + b"|" + video_bucket],
    }


# Training exposures per video in ROWS: a (u1, u2), b (u1, u2), c, d; e is eval only.
VIDEO_TRAIN_COUNTS = {"a": 2, "b": 2, "c": 1, "d": 1}


# max_history=2, eval_fraction=0.2: u1 has 5 exposures -> last 1 is eval; u2 has 2 -> none.
EXPECTED_TRAIN = [
    _ex("u1", "a", 100, 1, [], [], (0, 0), "c1"),
    _ex("u1", "b", 200, 0, ["a"], [], (1, 0), "c2"),
    _ex("u1", "c", 200, 1, ["a"], [], (1, 0), "c1"),
    _ex("u1", "d", 300, 1, ["a", "c"], ["b"], (2, 1), "c1"),
    _ex("u2", "a", 50, 0, [], [], (0, 0)),
    _ex("u2", "b", 60, 1, [], ["a"], (0, 1)),
]
# e: clicks a, c, d before it, cut to the newest two; the click count stays 3 (uncut).
EXPECTED_EVAL = [_ex("u1", "e", 400, 0, ["c", "d"], ["b"], (3, 1), "c2")]


def _key(ex):
    return (ex[F.USER_ID], ex[F.TIMESTAMP], ex[F.VIDEO_ID])


def _sorted(exs):
    return sorted(exs, key=_key)


def _interactions(rows):
    return [Interaction(u, v, int(t), int(c), cat) for u, v, t, c, cat in rows]


def _as_lists(feats):
    return {
        k: (list(v) if isinstance(v, list) else [v]) for k, v in feats.items()
    }  # scalars -> one-element lists, like a decoded tf.Example


def test_pure_builder_matches_hand_checked_examples():
    opts = examples.ExampleOptions(max_history=2, eval_fraction=0.2)
    got = {"train": [], "eval": []}
    for user in ("u1", "u2"):
        rows = [r for r in _interactions(ROWS) if r.user_id == user]
        for split, feats in examples.build_user_examples(rows, opts, has_split=False):
            got[split].append(_as_lists(feats))
    assert _sorted(got["train"]) == _sorted(EXPECTED_TRAIN)
    assert got["eval"] == EXPECTED_EVAL


def test_static_history_is_the_whole_training_history():
    opts = examples.ExampleOptions(max_history=2, eval_fraction=0.2, static_history=True)
    rows = [r for r in _interactions(ROWS) if r.user_id == "u1"]
    out = examples.build_user_examples(rows, opts, has_split=False)
    assert [s for s, _ in out] == ["train"] * 4 + ["eval"]
    for _, feats in out:  # train clicks a, c, d -> newest two; train non-clicks b
        assert feats[F.CLICK_HISTORY] == [b"c", b"d"]
        assert feats[F.NONCLICK_HISTORY] == [b"b"]
        # The counts are the whole training history's, uncut by max_history.
        assert (feats[F.CLICK_COUNT], feats[F.NONCLICK_COUNT]) == (3, 1)


def test_counts_are_uncut_clicks_and_nonclicks_before_the_exposure():
    """A user with more clicks than max_history: the histories are cut, the counts are not."""
    rows = [Interaction("u", f"v{t}", t, int(t % 3 != 0), "") for t in range(1, 11)]
    opts = examples.ExampleOptions(max_history=2, eval_fraction=0.0)
    out = examples.build_user_examples(rows, opts, has_split=False)
    assert [s for s, _ in out] == ["train"] * 10
    for (_, feats), row in zip(out, rows, strict=True):
        before = [r for r in rows if r.timestamp < row.timestamp]
        n_clicks = sum(r.click for r in before)
        assert feats[F.CLICK_COUNT] == n_clicks
        assert feats[F.NONCLICK_COUNT] == len(before) - n_clicks
        assert len(feats[F.CLICK_HISTORY]) == min(2, n_clicks)
        assert len(feats[F.NONCLICK_HISTORY]) == min(2, len(before) - n_clicks)
    last = out[-1][1]  # v10: 6 earlier clicks, 3 earlier non-clicks
    assert (last[F.CLICK_COUNT], last[F.NONCLICK_COUNT]) == (6, 3)
    assert last[F.CLICK_HISTORY] == [b"v7", b"v8"]
    assert last[F.NONCLICK_HISTORY] == [b"v6", b"v9"]
    # Encoded as int64 scalars.
    ex = examples.encode_example(last)
    assert list(ex.features.feature[F.CLICK_COUNT].int64_list.value) == [6]
    assert list(ex.features.feature[F.NONCLICK_COUNT].int64_list.value) == [3]


def test_provided_split_train_history_sees_only_train_rows():
    rows = [
        Interaction("u", "a", 10, 1, "", "train"),
        Interaction("u", "b", 20, 1, "", "eval"),
        Interaction("u", "c", 30, 0, "", "train"),
        Interaction("u", "d", 40, 0, "", "eval"),
    ]
    opts = examples.ExampleOptions(eval_fraction=0.0)
    out = {f[F.VIDEO_ID]: (s, f) for s, f in examples.build_user_examples(rows, opts, True)}
    assert out[b"c"][0] == "train"
    assert out[b"c"][1][F.CLICK_HISTORY] == [b"a"]  # b is eval: not in a train history
    assert (out[b"c"][1][F.CLICK_COUNT], out[b"c"][1][F.NONCLICK_COUNT]) == (1, 0)
    assert out[b"d"][0] == "eval"
    assert out[b"d"][1][F.CLICK_HISTORY] == [b"a", b"b"]
    assert out[b"d"][1][F.NONCLICK_HISTORY] == [b"c"]
    assert (out[b"d"][1][F.CLICK_COUNT], out[b"d"][1][F.NONCLICK_COUNT]) == (2, 1)


@pytest.mark.parametrize("n,fraction,expected", [(5, 0.2, 1), (4, 0.2, 0), (100, 0.57, 57)])
def test_eval_count(n, fraction, expected):
    assert examples.eval_count(n, fraction) == expected


def test_recent_click_count_covers_the_latest_ten_exposures_of_the_same_history():
    # 14 training exposures at t = 0..13, clicked at t = 0, 1, 2, 3 and 12; then 1 eval row
    # (eval_fraction 0.07 -> floor(15 * 0.07) = 1). At t = 13 the latest 10 exposures are
    # t = 3..12: clicks at 3 and 12 -> 2 (all clicks before: 5).
    clicked = {0, 1, 2, 3, 12}
    rows = [Interaction("u", f"v{t}", t, int(t in clicked), "") for t in range(15)]
    built = examples.build_user_examples(rows, examples.ExampleOptions(eval_fraction=0.07), False)
    by_time = {feats[F.TIMESTAMP]: (split, feats) for split, feats in built}
    assert by_time[13][1][F.RECENT_CLICK_COUNT] == 2 and by_time[13][1][F.CLICK_COUNT] == 5
    # t = 5: 5 exposures before (t 0..4), 4 clicks, all inside the window.
    assert by_time[5][1][F.RECENT_CLICK_COUNT] == 4
    # The eval row (t = 14) counts the latest 10 of everything before it: t 4..13 -> only 12.
    assert by_time[14][0] == examples.EVAL and by_time[14][1][F.RECENT_CLICK_COUNT] == 1


def test_options_are_validated():
    with pytest.raises(ValueError, match="max_history"):
        examples.ExampleOptions(max_history=0)
    with pytest.raises(ValueError, match="eval_fraction"):
        examples.ExampleOptions(eval_fraction=1.0)


def test_direct_runner_produces_exactly_the_expected_examples(tmp_path, build):

    root = write_log(tmp_path / "log", ROWS, HEADER)
    train, eval_, report = build(root, max_history=2, eval_fraction=0.2)
    assert _sorted(train) == _sorted([_with_buckets(e, VIDEO_TRAIN_COUNTS) for e in EXPECTED_TRAIN])
    assert eval_ == [_with_buckets(e, VIDEO_TRAIN_COUNTS) for e in EXPECTED_EVAL]
    for ex in train + eval_:  # leak-free: every history item is strictly earlier for that user
        ts = ex[F.TIMESTAMP][0]
        earlier = {r[1].encode() for r in ROWS if r[0].encode() == ex[F.USER_ID][0] and r[2] < ts}
        assert set(ex[F.CLICK_HISTORY]) | set(ex[F.NONCLICK_HISTORY]) <= earlier
    assert report["examples"] == {"eval": 1, "train": 6}
    assert report["interactions"]["kept_rows"] == len(ROWS)


def test_synthetic_log_histories_are_leak_free_and_split_by_time(tmp_path, build):
    from tf_ccl4rec.data import synth

    log = synth.generate(synth.SynthConfig(users=12, videos=60, topics=4, exposures_per_user=25))
    synth.write(log, str(tmp_path / "syn"))
    train, eval_, report = build(tmp_path / "syn", max_history=5, eval_fraction=0.25)
    quality.check_reconciles(report)
    frame = log.interactions
    assert len(train) + len(eval_) == len(frame)
    by_user = {u: g for u, g in frame.groupby(F.RAW_USER_ID)}
    for split, exs in (("train", train), ("eval", eval_)):
        for ex in exs:
            g = by_user[ex[F.USER_ID][0].decode()]
            t = ex[F.TIMESTAMP][0]
            before = g[g[F.RAW_TIMESTAMP] < t]
            clicked = set(before[before[F.RAW_CLICK] == 1][F.RAW_VIDEO_ID])
            skipped = set(before[before[F.RAW_CLICK] == 0][F.RAW_VIDEO_ID])
            assert {v.decode() for v in ex[F.CLICK_HISTORY]} <= clicked
            assert {v.decode() for v in ex[F.NONCLICK_HISTORY]} <= skipped
            assert len(ex[F.CLICK_HISTORY]) <= 5 and len(ex[F.NONCLICK_HISTORY]) <= 5
            # Counts: every earlier click / non-click (the time split puts a user's eval
            # exposures after the train ones, so "train before t" is "all before t").
            assert ex[F.CLICK_COUNT] == [len(before[before[F.RAW_CLICK] == 1])]
            assert ex[F.NONCLICK_COUNT] == [len(before[before[F.RAW_CLICK] == 0])]
            # The newest history item is the newest earlier click (cut keeps the newest).
            if ex[F.CLICK_HISTORY] and split == "train":
                newest = before[before[F.RAW_CLICK] == 1].sort_values(F.RAW_TIMESTAMP)
                assert ex[F.CLICK_HISTORY][-1].decode() in set(
                    newest[newest[F.RAW_TIMESTAMP] == newest[F.RAW_TIMESTAMP].max()][F.RAW_VIDEO_ID]
                )
    # Slice buckets: the user's and the video's number of training exposures.
    user_train = {}
    video_train = {}
    for ex in train:
        user_train[ex[F.USER_ID][0]] = user_train.get(ex[F.USER_ID][0], 0) + 1
        video_train[ex[F.VIDEO_ID][0]] = video_train.get(ex[F.VIDEO_ID][0], 0) + 1
    for ex in train + eval_:
        want_user = F.bucket_label(user_train.get(ex[F.USER_ID][0], 0), F.ACTIVITY_BUCKET_EDGES)
        want_video = F.bucket_label(
            video_train.get(ex[F.VIDEO_ID][0], 0), F.POPULARITY_BUCKET_EDGES
        )
        assert ex[F.USER_ACTIVITY_BUCKET] == [want_user.encode()]
        assert ex[F.VIDEO_POPULARITY_BUCKET] == [want_video.encode()]
        assert ex[F.USER_IN_VIDEO_BUCKET] == [ex[F.USER_ID][0] + b"|" + want_video.encode()]
    n_eval = {u: examples.eval_count(len(g), 0.25) for u, g in by_user.items()}
    assert len(eval_) == sum(n_eval.values())
    for ex in eval_:  # eval exposures are each user's latest
        g = by_user[ex[F.USER_ID][0].decode()]
        assert ex[F.TIMESTAMP][0] >= sorted(g[F.RAW_TIMESTAMP])[-n_eval[g.iloc[0, 0]]]


# --- bad input: every kind counted, ledgers reconcile, counters agree ---------------------------

BAD_HEADER = ["user_id", "video_id", "timestamp", "click", "split"]
FEATURE_IDS = ["v1", "v2", "v3", "v4", "v5", "v1"]
FEATURES = np.array(
    [[0, 0, 1], [0, 1, 0], [1, 0, 0], [np.nan, 0, 0], [0, np.inf, 0], [1, 1, 1]], np.float32
)
BAD_ROWS = [
    ["u1", "v1", 1, 1, "train"],
    ["u1", "v2", 2, 0, "train"],
    ["u1", "v3", 3, 1, "eval"],
    ["u2", "v1", 5, 0, "train"],
    "u1,v2,4,1",  # missing field (4 of 5)
    "u1,,4,1,train",  # missing field (empty video id)
    "u3,v1,4,1,train,extra",  # missing field (6 of 5)
    ["u1", "v2", "abc", 1, "train"],  # non-numeric timestamp
    ["u1", "v2", "nan", 1, "train"],  # non-numeric timestamp
    ["u1", "v2", 6, 2, "train"],  # click not 0/1
    ["u1", "v2", 7, "yes", "train"],  # click not 0/1
    ["u1", "v2", 8, 1, "test"],  # split not train/eval
    ["u1", "v1", 1, 1, "train"],  # duplicate
    ["u1", "v1", 1, 1, "train"],  # duplicate
    ["u1", "v9", 8, 1, "train"],  # unknown video
    ["u2", "v4", 9, 1, "train"],  # video whose features are NaN -> unknown
    ["u1", "v2", "1e30", 1, "train"],  # timestamp out of int64 range
    ["u1", "v2", 2**63, 1, "train"],  # timestamp out of int64 range
    ["u1", "v" * 2000, 9, 1, "train"],  # field too long (our limit)
    ["u1", "v" * 5_000_000, 9, 1, "train"],  # field too long (the csv module's limit)
]
# Written as bytes after the rows above: each used to abort the whole build.
RAW_BAD_LINES = [
    b"u1,v\xff2,9,1,train",  # not UTF-8
    b"u1,v\r2,9,1,train",  # a lone carriage return: the csv module cannot parse it
]
EXPECTED_BAD = {
    raw_log.NOT_UTF8: 1,
    raw_log.FIELD_TOO_LONG: 2,
    raw_log.MALFORMED_CSV: 1,
    raw_log.MISSING_FIELD: 3,
    raw_log.NON_NUMERIC_TIMESTAMP: 2,
    raw_log.TIMESTAMP_OUT_OF_RANGE: 2,
    raw_log.BAD_CLICK: 2,
    raw_log.BAD_SPLIT: 1,
    raw_log.DUPLICATE_ROW: 2,
    raw_log.UNKNOWN_VIDEO: 2,
}


def test_every_bad_kind_is_counted_and_reconciles(tmp_path, build):

    root = write_log(tmp_path / "bad", BAD_ROWS, BAD_HEADER, (FEATURE_IDS, FEATURES))
    with open(os.path.join(root, F.RAW_INTERACTIONS_FILE), "ab") as f:
        f.write(b"\n".join(RAW_BAD_LINES) + b"\n")
    train, eval_, report = build(root)
    inter, feats = report["interactions"], report["video_features"]
    assert inter["bad_rows"] == EXPECTED_BAD
    assert inter["input_rows"] == len(BAD_ROWS) + len(RAW_BAD_LINES)
    assert inter["kept_rows"] == 4 and inter["reconciles"]
    assert feats == {
        "input_rows": 6,
        "kept_rows": 3,
        "bad_rows": {
            raw_log.NON_FINITE_FEATURE: 2,
            raw_log.WRONG_FEATURE_WIDTH: 0,
            raw_log.DUPLICATE_FEATURE_ID: 1,
        },
        "reconciles": True,
    }
    assert (len(train), len(eval_)) == (3, 1)  # provided split column kept
    # Beam counters carry the same numbers as the JSON report.
    counters = report["counters"]
    for ledger in (quality.INTERACTIONS, quality.VIDEO_FEATURES):
        for kind, n in report[ledger]["bad_rows"].items():
            assert counters.get(quality.counter_name(ledger, kind), 0) == n, kind
        for total in ("input_rows", "kept_rows"):
            assert counters[quality.counter_name(ledger, total)] == report[ledger][total]
    assert counters["examples.train"] == 3 and counters["examples.eval"] == 1


def test_wrong_feature_width_is_counted(tmp_path, build):

    ids = ["v1", "v2"]
    root = write_log(
        tmp_path / "w", [["u", "v1", 1, 1], ["u", "v2", 2, 0]], None, (ids, np.ones((2, 3)))
    )
    root = write_log(
        tmp_path / "w",
        [["u", "v1", 1, 1], ["u", "v2", 2, 0], ["u", "v3", 3, 0]],
        None,
        (["v1", "v2", "v3"], np.ones((3, 3))),
    )
    _, _, report = build(root, feature_dim=3, eval_fraction=0.0)
    assert report["video_features"]["bad_rows"][raw_log.WRONG_FEATURE_WIDTH] == 0
    # Every row's video has the wrong width: nothing is left, and the error says why.
    message = (
        r"no training examples from .*: 3 input rows; none was kept; bad rows: "
        r"unknown_video_id=3 \(the feature table has 3 rows, 0 usable; bad: wrong_feature_width=3"
    )
    with pytest.raises(quality.EmptyDataError, match=message):
        build(root, feature_dim=4, eval_fraction=0.0)


def test_empty_or_all_bad_logs_stop_with_the_reason(tmp_path, build):
    header_only = write_log(tmp_path / "empty", [])
    with pytest.raises(quality.EmptyDataError, match="0 input rows; it has no data rows"):
        build(header_only)
    all_bad = write_log(tmp_path / "bad", [["u", "v", "x", 1], ["u", "v", 1, 7]])
    with pytest.raises(
        quality.EmptyDataError,
        match="2 input rows; none was kept; bad rows: click_not_0_1=1, non_numeric_timestamp=1",
    ):
        build(all_bad)
    all_eval = write_log(
        tmp_path / "eval", [["u", "v", 1, 1, "eval"]], [*F.RAW_REQUIRED_COLUMNS, "split"]
    )
    with pytest.raises(quality.EmptyDataError, match="1 were kept but every example is in split"):
        build(all_eval)
    assert sorted(os.listdir(tmp_path)) == ["bad", "empty", "eval"]  # no partial outputs


def test_strict_fails_on_the_first_bad_row_naming_file_and_line(tmp_path, build):
    root = write_log(tmp_path / "s", [["u", "v1", 1, 1], ["u", "v2", "later", 0]])
    path = os.path.join(root, F.RAW_INTERACTIONS_FILE)
    with pytest.raises(
        raw_log.BadRowError,
        match=f"strict: bad input row .non_numeric_timestamp. at {path} line 3: b'u,v2,later,0'",
    ):
        build(root, strict=True)
    root = write_log(tmp_path / "u", [["u", "v1", 1, 1], ["u", "v2", 2, 0]])
    path = os.path.join(root, F.RAW_INTERACTIONS_FILE)
    with open(path, "ab") as f:
        f.write(b"u,v3,\xff,1\n")
    with pytest.raises(raw_log.BadRowError, match=f"not_utf8. at {path} line 4"):
        build(root, strict=True)
    root = write_log(tmp_path / "r", [["u", "v1", 1, 1], ["u", "v", 2**63, 0]])
    path = os.path.join(root, F.RAW_INTERACTIONS_FILE)
    with pytest.raises(raw_log.BadRowError, match=f"timestamp_out_of_range. at {path} line 3"):
        build(root, strict=True)
    assert sorted(os.listdir(tmp_path)) == ["r", "s", "u"]  # no partial outputs or beam-temp


def test_layout_errors_are_clear(tmp_path):

    with pytest.raises(FileNotFoundError, match="interactions.csv"):
        examples.BuildExamples(str(tmp_path))
    root = write_log(tmp_path / "h", [["u", "v", 1]], ["user_id", "video_id", "timestamp"])
    with pytest.raises(ValueError, match="lacks required column"):
        examples.BuildExamples(root)
    root = str(tmp_path)
    with open(os.path.join(root, F.RAW_INTERACTIONS_FILE), "wb") as f:
        f.write(b"user_id,video_id,timestamp,\xffclick\nu,v,1,1\n")
    with pytest.raises(ValueError, match="header line is not UTF-8"):
        examples.BuildExamples(root)


def test_feature_ids_that_are_not_utf8_name_the_line(tmp_path, build):
    root = write_log(tmp_path / "f", [["u", "a", 1, 1]], None, (["a", "b"], np.ones((2, 2))))
    with open(os.path.join(root, F.RAW_VIDEO_FEATURE_IDS_FILE), "wb") as f:
        f.write(b"a\nb\xff\n")
    with pytest.raises(Exception, match="video_feature_ids.txt line 2 is not UTF-8"):
        build(root)
