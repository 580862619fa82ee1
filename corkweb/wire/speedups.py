"""Whether this process runs corkweb's C core or its pure-Python twins.

The C core is two optional extension modules: ``corkweb.wire._speedups`` (a request head's
fields, and building a head from the plain-head table) and ``corkweb.server._speedups`` (an
exchange's fields and the common case of ``end``, the output queue and ``write``). They are
built when corkweb is installed on a machine with a C compiler (wheels carry them); without
them, or with ``CORKWEB_PURE_PYTHON=1`` in the environment, the same classes are pure Python
with the same behaviour (the test suite runs both).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["core", "load"]


def load(name: str) -> ModuleType | None:
    """The C module ``name``, or None when it is not built here or the environment asks for
    pure Python."""
    if os.environ.get("CORKWEB_PURE_PYTHON"):
        return None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:  # not built on this machine (no compiler at install time)
        return None


#: ``corkweb.wire._speedups``, or None when the Python twins serve.
core = load("corkweb.wire._speedups")
