"""Plain request heads: read without llhttp, and remembered once read.

Most request heads a server receives are *plain*: a common method, an origin-form target, no
body, nothing to upgrade — and the same bytes again and again (a client repeats its headers;
a benchmark or a poller repeats its whole head). :class:`~corkweb.wire.parser.RequestParser`
looks such a head up by its exact bytes in a small table instead of having llhttp parse it,
which costs four to five calls from C into Python per request (``on_url``, one ``on_header``
per field, ``on_headers_complete``, ``on_message_complete``) and the checks in them.

:func:`parse` decides whether a head is plain with one strict regular expression, narrower
than what llhttp accepts (RFC 9112 §3 and §5 in their strictest reading): a method of the list,
an origin-form target of visible ASCII without a fragment, HTTP/1.1 or 1.0, field lines
``token ":" OWS value CRLF`` whose value is visible ASCII, spaces and tabs (llhttp keeps
trailing whitespace in a value; so does this), no obs-fold, no bare CR or LF, no obs-text; one
valid Host; no Content-Length, Transfer-Encoding, Expect or Upgrade; Connection, if present,
exactly ``keep-alive`` or ``close``; within the limits. A field section is read this way from
its second sight on: one never repeated (a unique cookie or trace id in every request) would
cost the regular expressions on top of llhttp. What it reads is exactly what the llhttp
path reads from the same bytes (``tests/test_wire_fast_heads.py`` compares the two on generated
input). Anything else is left to llhttp, which refuses what must be refused.
"""

from __future__ import annotations

import re

from .limits import Limits

__all__ = ["CACHE", "MAX_LEN", "VALID_HOSTS", "PlainHead", "clear", "read", "valid_host"]

# RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ]; an IP literal in brackets or
# a reg-name. Whitespace, "/", "@", "?", "#" and "\" can never appear.
_HOST_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")
# PERF: a server sees few distinct Host values; remembering the valid ones turns a regex match
# into a dict lookup (0.25 µs -> 0.04 µs per request). Bounded, so it cannot grow without end.
#: Host values found valid (read by the llhttp path's on_header too).
VALID_HOSTS: dict[bytes, bool] = {}
_VALID_HOSTS_MAX = 256


def valid_host(value: bytes) -> bool:
    """Whether ``value`` is a valid Host field value (remembered when it is)."""
    if value in VALID_HOSTS:
        return True
    if _HOST_RE.fullmatch(value) is None:
        return False
    if len(VALID_HOSTS) < _VALID_HOSTS_MAX:
        VALID_HOSTS[value] = True
    return True


_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_LINE_RE = re.compile(
    rb"(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|TRACE) (/[\x21\x22\x24-\x7e]*) HTTP/1\.([01])\r\n")
_FIELD = _TOKEN + rb":[ \t]*(?:[\x21-\x7e][\t\x20-\x7e]*)?\r\n"
_FIELDS_RE = re.compile(b"(?:" + _FIELD + rb")*\r\n")
_FIELD_RE = re.compile(b"(" + _TOKEN + rb"):[ \t]*((?:[\x21-\x7e][\t\x20-\x7e]*)?)\r\n")
_METHODS = {m: m.decode() for m in (
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE")}
_HOST, _CONNECTION = b"host", b"connection"
_KEEP_ALIVE, _CLOSE = b"keep-alive", b"close"
# The headers that make a message more than plain: a body, Expect, Upgrade.
_NOT_PLAIN = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade"))

#: What a plain head reads as: the limits it was checked against, then method, target, path,
#: query, version, keep-alive and the ``(lower-case name, value)`` fields.
PlainHead = tuple[Limits, str, str, str, str, str, bool, tuple[tuple[bytes, bytes], ...]]
#: What a plain field section reads as: the limits, the fields, whether Host is among them,
#: and the Connection value (lower case) if any.
_Fields = tuple[Limits, tuple[tuple[bytes, bytes], ...], bool, "bytes | None"]

#: Plain heads by their exact bytes (request line to the empty line, both CRLFs included).
CACHE: dict[bytes, PlainHead] = {}
#: Plain field sections by their exact bytes (after the request line, to the empty line): a
#: client sends the same fields to many targets.
_FIELDS: dict[bytes, _Fields] = {}
# PERF: both bounded in count and key size (at most ~256 x 1 KiB each); emptied when full, so
# that a stream of distinct heads costs a parse each, never memory.
_CACHE_MAX = 256
# Hashes of field sections seen once and left to llhttp (see ``read``); bounded like the rest.
_SEEN: set[int] = set()
_SEEN_MAX = 1024
#: The longest head looked for (and remembered); longer ones go to llhttp.
MAX_LEN = 1024


def read(data: bytes, pos: int, limits: Limits) -> tuple[PlainHead, int] | None:
    """Read the head at ``data[pos:]`` as the llhttp path would, if it is complete and plain:
    what it reads as, and the offset of its end; ``None`` otherwise. A plain head is
    remembered in :data:`CACHE`."""
    end = data.find(b"\r\n\r\n", pos, pos + MAX_LEN)
    if end < 0:
        return None
    end += 4
    raw = data[pos:end]
    entry = CACHE.get(raw)
    if entry is not None and entry[0] is limits:
        return entry, end  # a pipelined head after one of another length
    line = _LINE_RE.match(data, pos)
    if line is None:
        return None
    raw_method, raw_target, minor = line.groups()
    if len(raw_target) > limits.max_request_line:
        return None
    block = data[line.end():end]
    fields = _FIELDS.get(block)
    if fields is None or fields[0] is not limits:
        # PERF: checking a field section with the regular expressions costs some 8 ns a byte,
        # more than llhttp's callbacks for a section never seen again (a browser's 300 bytes
        # with a cookie of its own: 5.4 µs against llhttp's 3.5 µs per head). Only a section
        # seen before (a client that repeats its fields) is read here and remembered; the
        # first sight costs llhttp's path plus ~0.3 µs for the search and this set.
        key = hash(block)
        if key not in _SEEN:
            if len(_SEEN) >= _SEEN_MAX:
                _SEEN.clear()
            _SEEN.add(key)
            return None
        fields = _read_fields(block, limits)
        if fields is None:
            return None
    _, headers, host, connection = fields
    if minor == b"1":
        if not host:
            return None  # refused by the llhttp path (RFC 9112 §3.2)
        version = "1.1"
        keep_alive = connection != _CLOSE  # RFC 9112 §9.3: persistent unless told otherwise
    else:
        version = "1.0"
        keep_alive = connection == _KEEP_ALIVE
    target = raw_target.decode("ascii")
    path, _, query = target.partition("?")
    entry = (limits, _METHODS[raw_method], target, path, query, version, keep_alive, headers)
    if len(CACHE) >= _CACHE_MAX:
        CACHE.clear()
    CACHE[raw] = entry
    return entry, end


def _read_fields(block: bytes, limits: Limits) -> _Fields | None:
    if _FIELDS_RE.fullmatch(block) is None:
        return None
    found = _FIELD_RE.findall(block)
    # The llhttp path counts name + value + 4 a field: at most the field line's length + 1
    # (the block ends with the empty line's CRLF).
    if len(found) > limits.max_headers or len(block) - 2 + len(found) > limits.max_head:
        return None
    host = False
    connection = None
    headers = []
    for name, value in found:
        name = name.lower()
        if name == _HOST:
            if host or not valid_host(value):
                return None  # refused by the llhttp path (RFC 9112 §3.2)
            host = True
        elif name == _CONNECTION:
            if connection is not None:
                return None
            connection = value.lower()
            if connection != _KEEP_ALIVE and connection != _CLOSE:
                return None
        elif name in _NOT_PLAIN:
            return None
        headers.append((name, value))
    fields = (limits, tuple(headers), host, connection)
    if len(_FIELDS) >= _CACHE_MAX:
        _FIELDS.clear()
    _FIELDS[block] = fields
    return fields


def clear() -> None:
    """Forget every remembered head and field section (the tests read each head afresh)."""
    CACHE.clear()
    _FIELDS.clear()
    _SEEN.clear()
