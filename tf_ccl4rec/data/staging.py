"""Output directories written whole or not at all, never over their inputs.

Every data command (``data import``, ``data examples``) writes through `staged_directory`:

* an output that is, contains or is inside one of the inputs is refused (writing a log over the
  file being read destroys it);
* an existing non-empty output is refused unless ``overwrite``, which replaces it whole (never a
  mix of old and new files, e.g. stale shards or an old feature table);
* everything is written to a fresh temporary directory beside the target and renamed into place
  only when complete, so a failure leaves the target as it was and no partial files.

Remote outputs (``gs://...``) cannot be renamed as a directory: they are checked the same way,
written in place, and deleted when the build fails.
"""

import contextlib
import os
import shutil
import tempfile
import uuid


class OutputError(ValueError):
    """An output directory that cannot be written safely."""


def _is_remote(path: str) -> bool:
    return "://" in path


def _normalized(path: str) -> str:
    return path.rstrip("/") if _is_remote(path) else os.path.realpath(path)


def _inside(inner: str, outer: str) -> bool:
    sep = "/" if _is_remote(outer) else os.sep
    return inner.startswith(outer.rstrip(sep) + sep)


def check_not_overlapping(out: str, inputs) -> None:
    """Raises OutputError when ``out`` is, contains or is inside one of ``inputs`` (None skipped)."""
    target = _normalized(out)
    for source in inputs:
        if source is None:
            continue
        src = _normalized(source)
        if target == src:
            raise OutputError(f"output {out!r} is the input {source!r}; write to another directory")
        if _inside(src, target):
            raise OutputError(
                f"output {out!r} contains the input {source!r}; write to a directory outside it"
            )
        if _inside(target, src):
            raise OutputError(
                f"output {out!r} is inside the input {source!r}; write to a directory outside it"
            )


def _non_empty_local(out: str) -> bool:
    if not os.path.lexists(out):
        return False
    if not os.path.isdir(out):
        raise OutputError(f"output {out!r} exists and is not a directory")
    return bool(os.listdir(out))


def _refuse_non_empty(out: str) -> None:
    raise OutputError(
        f"output {out!r} exists and is not empty; pass --overwrite to replace it whole "
        "(or choose a new directory)"
    )


@contextlib.contextmanager
def staged_directory(out: str, inputs=(), overwrite: bool = False):
    """Yields a fresh directory to write; on success it becomes ``out``.

    Args:
      out: the output directory.
      inputs: paths read while writing (files or directories; None entries are skipped).
      overwrite: replace an existing non-empty ``out`` whole instead of refusing.

    Yields:
      The directory to write into (a temporary sibling of ``out``; ``out`` itself if remote).

    Raises:
      OutputError: ``out`` overlaps an input, is a file, or is non-empty without ``overwrite``.
    """
    check_not_overlapping(out, inputs)
    if _is_remote(out):
        yield from _remote_directory(out, overwrite)
        return
    if _non_empty_local(out) and not overwrite:
        _refuse_non_empty(out)
    target = os.path.abspath(out)
    parent, name = os.path.split(target)
    first_created = _first_missing_ancestor(parent)
    os.makedirs(parent, exist_ok=True)
    # os.mkdir, not mkdtemp: the output gets the usual (umask) permissions, not 0700.
    staging = os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:12]}")
    os.mkdir(staging)
    try:
        yield staging
        # Checked again: another process may have written the target meanwhile.
        if _non_empty_local(target) and not overwrite:
            _refuse_non_empty(out)
        if os.path.lexists(target):
            retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.rename(target, os.path.join(retired, name))
            os.rename(staging, target)
            shutil.rmtree(retired)
        else:
            os.rename(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
            if first_created is not None:  # failed: remove the parents this call created
                shutil.rmtree(first_created, ignore_errors=True)


def _first_missing_ancestor(path: str) -> str | None:
    """The outermost directory of ``path`` that does not exist yet (None: all exist)."""
    missing = None
    while not os.path.exists(path):
        missing, path = path, os.path.dirname(path)
    return missing


def _remote_directory(out: str, overwrite: bool):
    from apache_beam.io.filesystems import FileSystems

    existing = FileSystems.match([FileSystems.join(out, "*")])[0].metadata_list
    if existing:
        if not overwrite:
            _refuse_non_empty(out)
        FileSystems.delete([out])
    try:
        yield out
    except BaseException:
        if FileSystems.exists(out):
            FileSystems.delete([out])
        raise
