"""Whether this process runs the C core (``corkweb/server/_speedups.c``) or its Python twin.

The C core holds the fields of an exchange and of a corked connection's output queue at fixed
offsets, and runs ``write`` and the common case of ``end`` without entering the interpreter.
It is built when corkweb is installed on a machine with a C compiler (wheels carry it); without
it, or with ``CORKWEB_PURE_PYTHON=1`` in the environment, the same classes are pure Python with
the same behaviour (the test suite runs both).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["SPEEDUPS", "core"]



def _load() -> ModuleType | None:
    if os.environ.get("CORKWEB_PURE_PYTHON"):
        return None
    try:
        from . import _speedups
    except ImportError:  # not built on this machine (no compiler at install time)
        return None
    return _speedups


#: The C core's module, or None when the Python twins serve.
core = _load()
#: True when the C core serves this process.
SPEEDUPS = core is not None
