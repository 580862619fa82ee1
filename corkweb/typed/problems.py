"""Validation failures as RFC 9457 problem details: the ``errors`` list and its locations.

Each failure is ``{"loc": [...], "msg": "...", "type": "..."}``: ``loc`` starts with where the
value came from (``"path"``, ``"query"``, ``"header"``, ``"cookie"``, ``"body"``) and goes down
to the member that failed (``["body", "tags", 0]``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["msgspec_errors", "pydantic_errors"]

# msgspec's messages end with " - at `$.a[0].b`" when the failure is below the top level.
_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(-?\d+)\]|(\[\.\.\.\])")
_MISSING = re.compile(r"^Object missing required field `(.*)`$")


def msgspec_errors(exc: msgspec.ValidationError, loc: list[Any], value: Any
                   ) -> list[dict[str, Any]]:
    """One failure from msgspec (it stops at the first) with its location below ``loc``."""
    text = str(exc)
    where: list[Any] = list(loc)
    m = _AT.match(text)
    if m is not None:
        text = m.group(1)
        for name, index, value_of in _STEP.findall(m.group(2)):
            # msgspec does not name the key of a failing mapping value: "*" stands for it.
            where.append("*" if value_of else int(index) if index else name)
    kind = "invalid"
    missing = _MISSING.match(text)
    if missing is not None:
        where.append(missing.group(1))
        text, kind = "Field required", "missing"
    error: dict[str, Any] = {"loc": where, "msg": text, "type": kind}
    if value is not None:
        error["input"] = value
    return [error]


def pydantic_errors(exc: Any, loc: list[Any]) -> list[dict[str, Any]]:
    """Every failure of a pydantic ``ValidationError``, located below ``loc``."""
    return [{"loc": [*loc, *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False,
                                    include_input=False)]

