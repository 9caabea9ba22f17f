"""Fixtures of the data tests."""

import os

import pytest
from data_helpers import read_split


@pytest.fixture
def build(tmp_path):
    """Runs the Beam builder on DirectRunner; returns (train, eval, report)."""
    from tf_ccl4rec.data import cli, examples

    def _build(data_root, **options):
        out = str(tmp_path / f"examples_{len(os.listdir(tmp_path))}")
        report = cli.run_examples(
            str(data_root), out, examples.ExampleOptions(**options), progress=lambda _m: None
        )
        return read_split(out, "train"), read_split(out, "eval"), report

    return _build
