"""JSON on orjson: the encoder and decoder an app uses for ``res.end(obj)`` and ``get_json``.

orjson serialises dicts, lists, dataclasses, ``datetime``/``date``/``time``, ``UUID`` and enums
natively and returns bytes, which go to the socket without another copy. An app may add
orjson option flags (``orjson.OPT_INDENT_2``, ``OPT_SORT_KEYS``, …) and a ``default`` hook for
other types; a value that still cannot be serialised raises ``TypeError`` naming its type, and
the request is answered 500 with that message in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["make_dumps", "loads", "dumps"]

loads = orjson.loads
dumps = orjson.dumps


def make_dumps(
    option: int | None = None, default: Callable[[Any], Any] | None = None
) -> Callable[[Any], bytes]:
    """An encoder with fixed orjson ``option`` flags and ``default`` hook."""
    if option is None and default is None:
        return orjson.dumps
    opt = option or 0

    def encode(obj: Any) -> bytes:
        return orjson.dumps(obj, default=default, option=opt)

    return encode
