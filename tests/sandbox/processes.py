"""Child processes that die with the test process, even when it is SIGKILLed."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when the thread that started it exits.

    Survives exec (unshare -> sh -> chroot -> asterisk), so nothing outlives a killed test run.
    Start children from the main thread: the signal follows the starting thread, not the process.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
