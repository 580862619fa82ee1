"""The header lines of a response head, as a small collection (sans-IO).

An exchange keeps its head's fields here (``res.headers``), serialised once, as they are
written: the head is then joined, never formatted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .writer import header_line

__all__ = ["Headers", "FRAMING", "checked_name"]

#: Fields whose framing meaning corkweb owns (RFC 9112 §6): user values are refused.
FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))


class Headers:
    """The header lines of a response head, in order, as they will be sent.

    ``add`` appends a field (repeat it for repeated fields such as ``link``), ``get`` reads the
    first value of a name, ``replace`` sets a name to one value, ``remove`` drops every line of
    a name. ``content-length``, ``transfer-encoding`` and ``connection`` are the exchange's to
    write (a wrong one would desync the connection) and are refused with ``ValueError``.
    ``add_lines`` appends lines serialised beforehand (``corkweb.wire.writer.header_line``) by
    code that builds the same lines for every response.
    """

    __slots__ = ("lines", "has_content_type")

    def __init__(self) -> None:
        #: The serialised lines (``b"name: value\\r\\n"``), in the order they are sent.
        self.lines: list[bytes] = []
        #: Whether a ``content-type`` line is present (then no default one is added).
        self.has_content_type = False

    def add(self, name: str | bytes, value: str | bytes | int) -> Headers:
        lname = checked_name(name)
        if lname == "content-type":
            self.has_content_type = True
        self.lines.append(header_line(name, value))
        return self

    def add_lines(self, lines: Iterable[bytes]) -> Headers:
        for line in lines:
            if line[:13].lower() == b"content-type:":
                self.has_content_type = True
            self.lines.append(line)
        return self

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (any case), or ``default``."""
        for line_name, value in self:
            if line_name == name.lower():
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order."""
        lname = name.lower()
        return [value for line_name, value in self if line_name == lname]

    def replace(self, name: str, value: str | bytes | int) -> Headers:
        """Drop every line of ``name`` and add one with ``value``."""
        self.remove(name)
        return self.add(name, value)

    def remove(self, name: str) -> int:
        """Drop every line of ``name``; returns how many there were."""
        prefix = name.lower().encode("latin-1") + b":"
        kept = [line for line in self.lines if line[: len(prefix)].lower() != prefix]
        removed = len(self.lines) - len(kept)
        self.lines[:] = kept
        if prefix == b"content-type:" and removed:
            self.has_content_type = False
        return removed

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """``(lower-case name, value)`` per line, in order."""
        for line in self.lines:
            name, _, value = line.decode("latin-1").partition(":")
            yield name.lower(), value.strip()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"<Headers {list(self)!r}>"


def checked_name(name: str | bytes) -> str:
    lname = name.lower() if isinstance(name, str) else name.decode("latin-1").lower()
    if lname in FRAMING:
        raise ValueError(f"{name!r} is set by corkweb from the body and cannot be written")
    return lname
