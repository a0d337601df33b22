"""Worker processes that end with their parent.

A ``ProcessPoolExecutor`` worker whose parent is killed (``kill -9``, the OOM killer) is
reparented to init and keeps running, holding its few hundred MB, for good: nothing
will ever send it work or tell it to stop.  :func:`exit_with_parent`, called first in a
pool's initializer, makes the worker end soon after its parent does.

Two mechanisms, because neither suffices alone:

* Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel signals the worker the moment
  its parent goes.  The signal follows the parent *thread* that spawned the worker, so
  pools must be fed from a thread that lives as long as the pool (the server's event
  loop, the ingest's main thread), as they are.
* A daemon thread that polls ``os.getppid()`` and ends the process when the parent
  changes: works where ``prctl`` does not (other systems, a sandbox that refuses it) and
  covers a parent that died before ``prctl`` took effect.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
"""From ``<linux/prctl.h>``."""
POLL_SECONDS = 1.0
"""How often the fallback thread looks at the parent pid (s)."""


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent thread ends; True if it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, poll_seconds: float) -> None:
    stop = threading.Event()
    while not stop.wait(poll_seconds):
        if os.getppid() != parent:
            # no clean-up to do: the parent that would collect our results is gone
            os._exit(128 + signal.SIGTERM)


def exit_with_parent(sig: int = signal.SIGTERM, poll_seconds: float = POLL_SECONDS) -> None:
    """Make this (worker) process end when its parent process ends.

    Parameters
    ----------
    sig : int
        Signal the kernel sends when the parent goes (Linux); SIGTERM's default action ends
        the process.
    poll_seconds : float
        Period of the fallback check of the parent pid (s).
    """
    parent = os.getppid()
    _set_parent_death_signal(sig)
    if os.getppid() != parent:
        # the parent died before the kernel was told to watch it
        os._exit(128 + sig)
    threading.Thread(target=_watch_parent, args=(parent, poll_seconds), name="exit-with-parent",
                     daemon=True).start()
