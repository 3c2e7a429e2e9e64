"""Set-up of the local Dask worker processes of a run (a Dask worker *preload*).

The workers of a ``LocalCluster`` share the terminal's process group with the command
that started them, so Ctrl-C reaches them too. The command stops them itself after it
has kept the finished units; each worker answering Ctrl-C on its own would only print a
``KeyboardInterrupt`` traceback per process over the one line that says what to do.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["dask_setup"]


def dask_setup(worker: object) -> None:
    """Dask's preload hook: ignore SIGINT in this worker process (its cluster ends it)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
