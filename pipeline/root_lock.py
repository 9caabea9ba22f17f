"""One run per pipeline root at a time: an exclusive lock on <pipeline_root>/.run.lock.

Two LocalDagRunner runs on one root would both do all the work and race on the same MLMD store
and push destination. The second run is refused (not queued: a run can take hours, and a caller
that waits silently is worse than one told why), with the root and the holder's pid.

`fcntl.flock` is released by the kernel when the holder exits, also when it is SIGKILLed, so a
stale lock file never blocks a later run; the pid written into the file only names the holder.
flock is per host: roots on a shared filesystem used from several hosts are not covered.
"""

import contextlib
import errno
import fcntl
import os
import socket
import time

LOCK_FILE = ".run.lock"


class PipelineRootLocked(RuntimeError):
    """Another run holds the pipeline root."""

    def __init__(self, root: str, holder: str):
        self.root, self.holder = root, holder
        super().__init__(
            f"pipeline root {root} is in use by another run ({holder}); wait for it to finish "
            f"or use another --root"
        )


@contextlib.contextmanager
def hold(pipeline_root: str):
    """Holds the root's lock while the block runs; raises `PipelineRootLocked` if it is taken."""
    os.makedirs(pipeline_root, exist_ok=True)
    path = os.path.join(pipeline_root, LOCK_FILE)
    # "a+": opening must not truncate the holder's record before we know we hold the lock.
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            f.seek(0)
            holder = f.read().strip() or "pid unknown: it is starting"
            raise PipelineRootLocked(pipeline_root, holder) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        )
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # the lock itself goes with the file descriptor
