"""Output directories: never over an input, never mixed with an earlier run, never partial."""

import os

import pytest

from tf_ccl4rec.data import staging


def _tree(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files
    )


@pytest.mark.parametrize(
    "out,inputs,message",
    [
        ("src", ["src"], "is the input"),
        ("src/.", ["src"], "is the input"),
        ("src/raw", ["src"], "is inside the input"),
        (".", ["src/log.csv"], "contains the input"),
        ("src", ["src/log.csv"], "contains the input"),
    ],
)
def test_output_overlapping_an_input_is_refused(tmp_path, monkeypatch, out, inputs, message):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "log.csv").write_text("keep me\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(staging.OutputError, match=message):
        with staging.staged_directory(out, inputs):
            pytest.fail("the body must not run")
    assert (tmp_path / "src" / "log.csv").read_text() == "keep me\n"


def test_symlinked_output_is_recognised_as_the_input(tmp_path):
    (tmp_path / "src").mkdir()
    os.symlink(tmp_path / "src", tmp_path / "alias")
    with pytest.raises(staging.OutputError, match="is the input"):
        with staging.staged_directory(str(tmp_path / "alias"), [str(tmp_path / "src")]):
            pass


def test_sibling_with_a_common_prefix_is_not_an_overlap(tmp_path):
    with staging.staged_directory(str(tmp_path / "data2"), [str(tmp_path / "data")]) as d:
        open(os.path.join(d, "f"), "w").close()
    assert _tree(tmp_path / "data2") == ["f"]


def test_non_empty_output_needs_overwrite_which_replaces_it_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale-00000-of-00009").write_text("old")
    with pytest.raises(staging.OutputError, match="not empty; pass --overwrite"):
        with staging.staged_directory(str(out)):
            pytest.fail("the body must not run")
    assert _tree(out) == ["stale-00000-of-00009"]
    with staging.staged_directory(str(out), overwrite=True) as d:
        assert d != str(out) and os.path.dirname(d) == str(tmp_path)  # staged beside the target
        open(os.path.join(d, "new"), "w").close()
        assert _tree(out) == ["stale-00000-of-00009"]  # untouched until complete
    assert _tree(out) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_an_empty_existing_output_is_fine_and_a_file_is_not(tmp_path):
    (tmp_path / "empty").mkdir()
    with staging.staged_directory(str(tmp_path / "empty")) as d:
        open(os.path.join(d, "f"), "w").close()
    assert _tree(tmp_path / "empty") == ["f"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(staging.OutputError, match="not a directory"):
        with staging.staged_directory(str(tmp_path / "file"), overwrite=True):
            pass


def test_a_failure_leaves_the_target_as_it_was_and_nothing_partial(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with staging.staged_directory(str(out), overwrite=True) as d:
            open(os.path.join(d, "half"), "w").close()
            raise RuntimeError("boom")
    assert _tree(out) == ["previous"]
    with pytest.raises(RuntimeError, match="boom"):
        with staging.staged_directory(str(tmp_path / "new")):
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_parents_created_for_a_failed_output_are_removed(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with staging.staged_directory(str(tmp_path / "a" / "b" / "out")):
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with staging.staged_directory(str(tmp_path / "a" / "b" / "out")) as d:
        open(os.path.join(d, "f"), "w").close()
    assert _tree(tmp_path) == ["a/b/out/f"]
