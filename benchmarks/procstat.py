"""CPU time and resident memory of a server's whole process tree, read from ``/proc``.

A server may be several processes (Granian runs its worker as a child), so every figure is
summed over the tree under the pid that the runner started.
"""
from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (children of every thread, not only the main one)."""
    pids, frontier = [pid], [pid]
    while frontier:
        kids: list[int] = []
        for p in frontier:
            try:
                tasks = os.listdir(f"/proc/{p}/task")
            except OSError:
                continue
            for t in tasks:
                try:
                    children = Path(f"/proc/{p}/task/{t}/children").read_text()
                    kids += [int(c) for c in children.split()]
                except OSError:
                    pass
        pids += kids
        frontier = kids
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by the tree under ``pid``."""
    ticks = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of the tree under ``pid``, in bytes."""
    pages = 0
    for p in tree(pid):
        try:
            pages += int(Path(f"/proc/{p}/statm").read_text().split()[1])
        except OSError:
            continue
    return pages * _PAGE
