"""The TF Serving directory layout: ``<base>/<model_name>/<int version>/saved_model.pb``.

TF Serving (and ``serving.server``) treat every directory directly under ``<base>/<model_name>``
whose name is a non-negative integer as a version. A copy that is still being written must never
look like a version, so writers (the Pusher, ``export``, tests) write into a temporary directory
beside the target whose name is not an integer, then ``os.rename`` it into place: a rename within
one file system is atomic, so a reader sees either no version or a complete one.
``atomic_version_dir`` does exactly that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

SAVED_MODEL_FILE = "saved_model.pb"
TEMP_PREFIX = ".tmp-"  # never an integer, so never taken for a version


def model_dir(base_path: str, model_name: str) -> str:
    """``<base_path>/<model_name>``: the directory TF Serving's ``base_path`` points at."""
    return os.path.join(base_path, model_name)


def version_dir(model_path: str, version: int) -> str:
    """``<model_path>/<version>``."""
    return os.path.join(model_path, str(int(version)))


MAX_VERSION = 2**63 - 1  # versions are int64 in TF Serving's protos


def parse_version(name: str) -> int | None:
    """The version a directory name stands for, or None (temp dirs, files, other names).

    Only canonical ASCII decimal integers count: ``"7"``, not ``"007"`` (it would be version 7 in
    a directory that ``version_dir`` does not name), ``"²"`` or ``"١"`` (Unicode digits that
    ``str.isdigit`` accepts) or a number beyond int64.
    """
    if not (name.isascii() and name.isdigit()) or str(int(name)) != name:
        return None
    version = int(name)
    return version if version <= MAX_VERSION else None


def is_complete(path: str) -> bool:
    """True if ``path`` is a version directory holding a ``saved_model.pb``."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


def list_versions(model_path: str) -> list[int]:
    """The complete versions under ``model_path``, ascending (missing path = no versions).

    Args:
      model_path: ``<base>/<model_name>``.

    Returns:
      Sorted integer versions whose directory holds a ``saved_model.pb``.
    """
    return scan(model_path)[0]


def scan(model_path: str) -> tuple[list[int], list[str]]:
    """``(list_versions(model_path), ignored)``: ``ignored`` are the directories that are neither
    a version nor hidden / temporary (e.g. ``"²"``, ``"007"``, ``"old"``), sorted, for a warning.
    """
    try:
        names = os.listdir(model_path)
    except FileNotFoundError:
        return [], []
    versions, ignored = [], []
    for name in names:
        version = parse_version(name)
        path = os.path.join(model_path, name)
        if version is not None:
            if is_complete(path):
                versions.append(version)
        elif not name.startswith(".") and os.path.isdir(path):
            ignored.append(name)
    return sorted(versions), sorted(ignored)


def fingerprint(path: str) -> tuple:
    """(relative path, size, mtime) of every file under ``path``: equal on two looks = settled.

    A non-atomic copy (e.g. a plain recursive copy into ``<N>/``) can expose ``saved_model.pb``
    before the variables; the server loads a version only once its fingerprint stops changing.
    """
    entries = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(entries))


def next_version(model_path: str) -> int:
    """One more than the highest version directory (complete or not) under ``model_path``."""
    try:
        taken = [parse_version(n) for n in os.listdir(model_path)]
    except FileNotFoundError:
        return 1
    return max([v for v in taken if v is not None], default=0) + 1


@contextlib.contextmanager
def atomic_version_dir(model_path: str, version: int | None = None):
    """Yields a temporary directory to write a SavedModel into; renames it to the version on exit.

    Args:
      model_path: ``<base>/<model_name>`` (created if missing).
      version: the version to publish; ``None`` = ``next_version(model_path)``.

    Yields:
      The temporary directory (beside the target, same file system).

    Raises:
      FileExistsError: if the version directory already exists (versions are immutable).
    """
    os.makedirs(model_path, exist_ok=True)
    version = next_version(model_path) if version is None else int(version)
    target = version_dir(model_path, version)
    if os.path.exists(target):
        raise FileExistsError(f"version {version} already exists at {target}")
    tmp = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{version}-", dir=model_path)
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a server running as another user must read it
    try:
        yield tmp
        os.rename(tmp, target)  # atomic on one file system; fails if target appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
