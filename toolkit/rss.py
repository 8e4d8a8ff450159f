"""The process's resident memory, for ``RunOptions.memory_limit``."""

from __future__ import annotations

import os
import sys

__all__ = ["rss_bytes"]


def rss_bytes() -> int:
    """Current resident set size (Linux), else the peak one."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource  # POSIX only; Windows has neither it nor /proc
    except ImportError:
        return 0  # unknown: a memory limit never triggers
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
