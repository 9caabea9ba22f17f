"""The foundation: environment guard, CLI routing, package layout."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

from tf_ccl4rec import cli


def test_legacy_keras_is_selected():
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__
    assert tfrs.models.Model.__mro__[1].__module__.startswith("tf_keras")


def test_import_in_clean_process_sets_legacy_keras():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = "import tf_ccl4rec, tensorflow as tf, tensorflow_recommenders, tfx; print(tf.keras.__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("tf_keras")


def test_tf_start_prints_no_cpp_error_lines():
    """The "Unable to register cuFFT/cuDNN/cuBLAS factory" E-lines stay out of a clean process."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import tf_ccl4rec.model, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "3"
    assert "Unable to register" not in out.stderr, out.stderr[-2000:]


# The two entry points that drive a running server (they start it and query it with the client);
# they sit above both packages and import `serving` lazily inside functions. Nothing else may.
SERVING_USERS = {"tf_ccl4rec/demo.py", "tf_ccl4rec/bench/serve.py"}


def _imports(nodes) -> list[str]:
    """What the import statements among `nodes` import: modules, and for `from m import x`
    both `m` and `m.x` (x may be a module)."""
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _serving_imports(nodes) -> list[str]:
    """Modules of `serving` imported by the import statements among `nodes`."""
    return sorted(m for m in _imports(nodes) if m == "serving" or m.startswith("serving."))


def test_no_module_imports_tfx_v1_or_the_google_cloud_extensions_at_module_level():
    """`tfx.v1` imports TFX's Google Cloud extensions (~3.6 s in every process that loads the
    pipeline: each test worker, CLI and Trainer subprocess); only a Vertex run needs them."""
    root = pathlib.Path(__file__).resolve().parents[1]
    for package in ("tf_ccl4rec", "pipeline", "serving"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            name = path.relative_to(root).as_posix()
            slow = [
                m for m in _imports(ast.walk(tree)) if m == "tfx.v1" or m.startswith("tfx.v1.")
            ] + [m for m in _imports(tree.body) if "google_cloud_ai_platform" in m]
            assert not slow, f"{name} imports {slow}"


def test_library_does_not_import_serving():
    """tf_ccl4rec is the library `serving` builds on; the serving contract lives in it."""
    root = pathlib.Path(__file__).resolve().parents[1]
    for path in sorted((root / "tf_ccl4rec").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if name in SERVING_USERS:
            assert not _serving_imports(tree.body), f"{name} imports serving at module level"
        else:
            assert not _serving_imports(ast.walk(tree)), f"{name} imports serving"


def test_the_allocator_make_test_preloads_is_loaded():
    """`make test` preloads tcmalloc (scripts/tcmalloc.sh). ld.so ignores a library it cannot
    preload after one stderr line, so the suite would run on glibc's malloc unnoticed: check
    that every tcmalloc LD_PRELOAD names is mapped in this (test worker) process."""
    preload = [
        p for p in os.environ.get("LD_PRELOAD", "").replace(":", " ").split() if "tcmalloc" in p
    ]
    if not preload:
        pytest.skip(
            "LD_PRELOAD names no tcmalloc: not started by `make test`, or scripts/tcmalloc.sh "
            "found none and said why"
        )
    with open("/proc/self/maps") as f:
        mapped = f.read()
    for path in preload:
        assert os.path.realpath(path) in mapped, f"{path} is in LD_PRELOAD but not loaded"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in text


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "ccl4rec")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pipeline" in out.stdout


@pytest.mark.parametrize(
    "count,label",
    [(0, "000-009"), (9, "000-009"), (10, "010-049"), (199, "050-199"), (200, "200+")],
)
def test_bucket_label(count, label):
    from tf_ccl4rec import features as F

    assert F.bucket_label(count, F.ACTIVITY_BUCKET_EDGES) == label
