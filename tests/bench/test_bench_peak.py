"""`ccl4rec bench train|infer` against its own denominators: the matmul peak is sampled before,
between and after the model runs and the best sample is used; loads above the core count make
the run say its figures are unreliable. Measurements and loads are injected (no timing here)."""

import pytest

from tf_ccl4rec.bench import speed


class FakeWorker:
    """Plays back peak samples in order; every model run achieves `achieved` GFLOP/s."""

    def __init__(self, peaks, achieved=50.0):
        self.peaks = list(peaks)
        self.achieved = achieved
        self.calls = []

    def __call__(self, mode, **kwargs):
        self.calls.append((mode, kwargs.get("setting"), kwargs.get("model")))
        if mode == "peak":
            return {"gflops": self.peaks.pop(0), "size": kwargs["peak_size"]}
        return {
            "ms_per_step": 10.0, "impressions_per_s": 3200.0, "gflop_per_step": 0.5,
            "achieved_gflops": self.achieved, "parameters": {"embedding": 1, "non_embedding": 1},
            "peak_rss_mb": 1.0,
        }  # fmt: skip


def _loads(*ones):
    """A loadavg() returning the given 1-minute loads in turn."""
    it = iter(ones)
    return lambda: (next(it), 0.5, 0.5)


def _run(worker, loadavg, settings=("paper", "demo"), models=("ccl4rec", "atrank"), samples=3):
    return speed.run_benchmark("train", list(models), list(settings), steps=1, warmup=0,
                               progress=lambda s: None, peak_samples=samples, worker=worker,
                               loadavg=loadavg)  # fmt: skip


@pytest.mark.parametrize(
    "runs, samples, expected",
    [
        (4, 3, [0, 2, 4]),
        (8, 3, [0, 4, 8]),
        (1, 3, [0, 0, 1]),
        (3, 2, [0, 3]),
        (4, 5, [0, 1, 2, 3, 4]),
    ],
)
def test_peak_positions_first_before_last_after(runs, samples, expected):
    assert speed.peak_positions(runs, samples) == expected


def test_peak_positions_need_before_and_after():
    with pytest.raises(ValueError, match=">= 2"):
        speed.peak_positions(4, 1)


def test_peak_is_sampled_around_the_runs_and_the_best_sample_is_the_denominator(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    # The first sample was taken under load (half the machine): it must not be the denominator.
    worker = FakeWorker([100.0, 200.0, 150.0])
    result = _run(worker, _loads(1.0, 1.0, 1.0, 1.0, 1.0))
    assert [c[0] for c in worker.calls] == ["peak", "train", "train", "peak", "train", "train",
                                            "peak"]  # fmt: skip
    # The between-sample sits between the two settings.
    assert worker.calls[3] == ("peak", None, None) and worker.calls[4][1] == "demo"
    peak = result["matmul_peak"]
    assert peak["gflops"] == 200.0
    assert [p["gflops"] for p in peak["samples"]] == [100.0, 200.0, 150.0]
    assert [p["before_run"] for p in peak["samples"]] == [0, 2, 4]
    for cells in result["results"].values():
        for r in cells.values():
            assert r["fraction_of_peak"] == pytest.approx(50.0 / 200.0)
    text = speed.format_report(result)
    assert "matmul peak 200.0 GFLOP/s (float32; best of the samples 100.0, 200.0, 150.0)" in text
    assert "UNRELIABLE" not in text and not result["unreliable"]


def test_load_before_and_after_is_recorded_and_printed(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    result = _run(FakeWorker([100.0, 100.0]), _loads(0.25, 1.5, 1.75, 1.9), samples=2)
    m = result["machine"]
    assert m["load_avg_at_start"][0] == 0.25 and m["load_avg_at_end"][0] == 1.9
    assert [p["load_avg"][0] for p in result["matmul_peak"]["samples"]] == [1.5, 1.75]
    text = speed.format_report(result)
    assert "load average at start 0.25, 0.50, 0.50, at end 1.90, 0.50, 0.50" in text
    table = speed.markdown_table(result)
    assert "load average at start 0.25, 0.50, 0.50, at end 1.90, 0.50, 0.50" in table
    assert "UNRELIABLE" not in text + table


@pytest.mark.parametrize(
    "loads, flagged",
    [
        ((3.5, 1.0, 1.0, 1.0, 1.0), [("start", 3.5)]),
        ((1.0, 1.0, 1.0, 1.0, 2.01), [("end", 2.01)]),
        ((1.0, 1.0, 4.0, 1.0, 1.0), [("peak sample 2", 4.0)]),
        ((2.0, 2.0, 2.0, 2.0, 2.0), []),  # at the core count, not above
    ],
)
def test_load_above_the_core_count_makes_the_run_unreliable(monkeypatch, loads, flagged):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    result = _run(FakeWorker([100.0, 100.0, 100.0]), _loads(*loads))
    assert result["unreliable"] == flagged
    text = speed.format_report(result)
    table = speed.markdown_table(result)
    if flagged:
        when, load = flagged[0]
        assert (
            f"UNRELIABLE: 1-minute load average {load:.2f} at {when} is above the 2 cores" in text
        )
        assert "% of peak figures are unreliable" in table
    else:
        assert "UNRELIABLE" not in text + table


def test_bench_rejects_fewer_than_two_peak_samples(capsys):
    from tf_ccl4rec import cli

    assert cli.main(["bench", "train", "--peak-samples", "1"]) == 2
    assert "--peak-samples" in capsys.readouterr().err


def test_a_setting_without_baselines_prints_no_empty_ratio_line(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    result = _run(FakeWorker([100.0, 100.0]), _loads(1.0, 1.0, 1.0, 1.0), models=("ccl4rec",),
                  samples=2)  # fmt: skip
    text, table = speed.format_report(result), speed.markdown_table(result)
    assert "speed ratios" not in text and "speed over" not in table


def test_the_rows_of_eq3_are_printed_for_every_ccl4rec_cell(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    worker = FakeWorker([100.0, 100.0])
    rows = iter([4521.0, 1266.0])
    plain = FakeWorker.__call__

    def with_rows(self, mode, **kwargs):
        out = plain(self, mode, **kwargs)
        if mode == "train" and kwargs["model"] == "ccl4rec":
            out["relatedness_rows"] = next(rows)
        return out

    monkeypatch.setattr(FakeWorker, "__call__", with_rows)
    result = _run(worker, _loads(1.0, 1.0, 1.0, 1.0), settings=("paper", "paper-users"),
                  samples=2)  # fmt: skip
    expected = "paper 4,521, paper-users 1,266"
    assert expected in speed.format_report(result) and expected in speed.markdown_table(result)
