"""The server's half of the C core (see ``corkweb.wire.speedups``), or None."""

from __future__ import annotations

from ..wire.speedups import load

__all__ = ["SPEEDUPS", "core"]

#: ``corkweb.server._speedups``, or None when the Python twins serve.
core = load("corkweb.server._speedups")
#: True when the C core serves this process.
SPEEDUPS = core is not None
