"""Knowing that ``corkweb run`` is importing the user's module, to refuse ``app.run()`` there.

A module that calls ``app.run()`` at import time (no ``if __name__ == "__main__":`` guard)
would start its own server inside ``corkweb run``'s import, on its own port, ignoring every flag,
and after Ctrl-C the command would start a second server. :func:`importing` marks the import;
:func:`refuse_run` (called by ``App.run``) raises :class:`RunDuringImport` inside it, and the
command turns that into one line naming the file and line of the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .callsite import describe, user_frame
from .errors import CorkwebError

__all__ = ["RunDuringImport", "importing", "refuse_run"]

#: The module ``corkweb run`` is importing, or ``None``.
_current: list[str] = []


class RunDuringImport(CorkwebError):
    """``app.run()`` was called while ``corkweb run`` imported the app's module."""


@contextmanager
def importing(module: str) -> Iterator[None]:
    """Mark the import of ``module`` by ``corkweb run`` (nests, for safety)."""
    _current.append(module)
    try:
        yield
    finally:
        _current.pop()


def refuse_run() -> None:
    """Raise :class:`RunDuringImport` if ``corkweb run`` is importing the app's module."""
    if not _current:
        return
    where = describe(user_frame(2))
    raise RunDuringImport(
        f"{where} calls app.run() while `corkweb run` imports {_current[-1]!r}; the command "
        f"serves the app itself: put that call under `if __name__ == \"__main__\":`")
