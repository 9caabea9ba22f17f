"""One run per pipeline root: a second run is refused before any component runs (no pipeline run)."""

import os
import subprocess
import sys

import pytest

from pipeline import root_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Holds the root's lock in another process until its stdin closes.
HOLDER = """
import sys
from pipeline import root_lock
with root_lock.hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def held_root(tmp_path):
    root = str(tmp_path / "root")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, root],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield root, holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_second_run_on_a_held_root_is_refused_before_any_component_runs(held_root, tmp_path):
    from pipeline import local_runner
    from pipeline.configs import PipelineConfig

    root, holder = held_root
    config = PipelineConfig(data_root=str(tmp_path / "data"), pipeline_root=root)
    with pytest.raises(root_lock.PipelineRootLocked) as err:
        local_runner.run(config, echo=lambda *a, **k: None)
    assert root in str(err.value) and f"pid {holder.pid} " in str(err.value)
    assert os.listdir(root) == [root_lock.LOCK_FILE]  # no logs, no MLMD store, no artifacts


def test_the_cli_refuses_with_exit_code_4_and_names_root_and_holder(held_root, tmp_path, capsys):
    from pipeline import cli
    from tf_ccl4rec.cli import main

    root, holder = held_root
    code = main(["pipeline", "run", "--data", str(tmp_path / "data"), "--root", root])
    assert code == cli.EXIT_ROOT_IN_USE == 4
    err = capsys.readouterr().err
    assert "REFUSED" in err and root in err and f"pid {holder.pid} " in err


def test_the_lock_dies_with_its_holder_even_when_killed(held_root):
    root, holder = held_root
    holder.kill()  # SIGKILL: no cleanup runs; the lock file and its pid stay behind
    holder.wait(timeout=30)
    with root_lock.hold(root):
        with open(os.path.join(root, root_lock.LOCK_FILE)) as f:
            assert f.read().startswith(f"pid {os.getpid()} ")
        # ...and while this process holds it, another hold on the same root is refused.
        with pytest.raises(root_lock.PipelineRootLocked, match=f"pid {os.getpid()} "):
            with root_lock.hold(root):
                pass
