"""Whether this process shares its listening ports with forked siblings.

socketify's way to use several cores is ``os.fork()`` after building nothing, then every
process calls ``app.listen(3000)`` and ``app.run()``: each binds the same port, which works
only if every socket sets ``SO_REUSEPORT`` (the kernel then spreads connections over them).
corkweb's own single-process ``run`` binds exclusively, so that starting a second instance by
mistake fails with "address already in use" instead of silently taking half of the traffic.

The two are told apart by a fork: a hook registered when corkweb is imported marks both sides
of any later ``os.fork()`` (``multiprocessing`` with the fork start method included), and such
processes share their ports. ``app.run(reuse_port=True/False)`` decides explicitly.
corkweb's own workers (``--workers``) do not use this: their supervisor binds the sockets
(``corkweb/server/workers.py``).
"""

from __future__ import annotations

import os

__all__ = ["share_ports", "forked", "fork_child"]

_forked = False
_child = False


def _mark_parent() -> None:
    global _forked
    _forked = True


def _mark_child() -> None:
    global _forked, _child
    _forked = _child = True


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork and no SO_REUSEPORT balance
    os.register_at_fork(after_in_parent=_mark_parent, after_in_child=_mark_child)


def share_ports() -> bool:
    """True if TCP listening sockets should set ``SO_REUSEPORT`` in this process: it forked,
    or was forked, after corkweb was imported."""
    return forked()


def forked() -> bool:
    """True if this process forked, or was forked, after corkweb was imported."""
    return _forked


def fork_child() -> bool:
    """True if this process was made by ``os.fork()`` after corkweb was imported."""
    return _child
