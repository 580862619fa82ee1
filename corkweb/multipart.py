"""``multipart/form-data`` (RFC 7578): a sans-IO parser, a streaming reader, ``get_form``.

Three layers, each usable alone:

* :class:`MultipartParser` — bytes in, events out (``("part", headers)``, ``("data", bytes)``,
  ``("end", None)``), no asyncio. It looks for the delimiter with ``bytes.find`` (C speed) and
  enforces the limits as it goes: number of parts, size of each part's head, total body.
* :class:`MultipartReader` — ``async for part in MultipartReader(res): ...`` with
  ``async for chunk in part`` or ``await part.read()``; reading the socket pauses while the
  consumer is behind (bounded memory).
* :func:`get_form` (``await res.get_form()``) — fields as text, files spooled to disk past
  ``spool_max`` bytes, limits on fields and files.

Limit violations answer 413 (:class:`PayloadTooLarge`); malformed bodies answer 400.

Why not a library: python-multipart (Starlette's) is callback-based and would need this same
adapter around it, and its boundary search has needed two DoS fixes (CVE-2024-24762,
CVE-2024-53981); ``multipart`` (defnull) is good but another dependency for ~200 lines whose
hot loop is a ``bytes.find``. See ``docs/uploads.md``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = [
    "MultipartParser", "MultipartReader", "Part", "FormData", "UploadFile", "get_form",
    "parse_options_header", "safe_filename",
]

KiB, MiB = 1024, 1024 * 1024
# RFC 2046 §5.1.1: 1 to 70 bchars, not ending with a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
PREAMBLE, HEADERS, BODY, AFTER_DELIMITER, EPILOGUE = range(5)


def parse_options_header(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b.txt"'`` → ``("form-data", {"name": "a", ...})``.

    Quoted strings may hold ``;`` and backslash escapes; ``filename*=UTF-8''...`` (RFC 5987)
    wins over ``filename``. Names are lower-cased.
    """
    pos, n = 0, len(value)
    end = value.find(";")
    kind = (value if end < 0 else value[:end]).strip().lower()
    params: dict[str, str] = {}
    pos = n if end < 0 else end + 1
    while pos < n:
        eq = value.find("=", pos)
        semi = value.find(";", pos)
        if eq < 0 or (0 <= semi < eq):
            pos = n if semi < 0 else semi + 1  # a parameter without a value: skip it
            continue
        key = value[pos:eq].strip().lower()
        pos = eq + 1
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos < n and value[pos] == '"':
            out: list[str] = []
            pos += 1
            while pos < n and value[pos] != '"':
                if value[pos] == "\\" and pos + 1 < n:
                    pos += 1
                out.append(value[pos])
                pos += 1
            if pos >= n:
                raise BadRequest("unterminated quoted string in a multipart header")
            val = "".join(out)
            semi = value.find(";", pos)
            pos = n if semi < 0 else semi + 1
        else:
            semi = value.find(";", pos)
            val = (value[pos:] if semi < 0 else value[pos:semi]).strip()
            pos = n if semi < 0 else semi + 1
        if key.endswith("*"):
            charset, _, rest = val.partition("'")
            _, _, encoded = rest.partition("'")
            try:
                val = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                raise BadRequest(f"bad RFC 5987 value for {key!r}") from None
            key = key[:-1]
            params[key] = val
        elif key not in params:
            params[key] = val
    return kind, params


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; 415/400 otherwise."""
    if not content_type:
        raise UnsupportedMediaType("expected a multipart/form-data body")
    kind, params = parse_options_header(content_type)
    if kind != "multipart/form-data":
        raise UnsupportedMediaType(f"expected multipart/form-data, got {kind!r}")
    boundary = params.get("boundary", "")
    if not _BOUNDARY.match(boundary):
        raise BadRequest("missing or invalid multipart boundary")
    return boundary.encode("ascii")


_WINDOW = 16 * KiB


def _find(buf: bytes, needle: bytes) -> int:
    """``buf.find(needle)``, searched in 16 KiB windows.

    # PERF: CPython switches to the two-way algorithm for haystacks over 30,000 bytes; on
    # upload data the default Horspool search over windows is faster: 21 µs instead of 35 µs
    # per 64 KiB read here (~0.25 ms less per MiB uploaded).
    """
    size = len(buf)
    if size <= _WINDOW:
        return buf.find(needle)
    overlap = len(needle) - 1
    start = 0
    while start < size:
        at = buf.find(needle, start, start + _WINDOW + overlap)
        if at >= 0:
            return at
        start += _WINDOW
    return -1


class MultipartParser:
    """Sans-IO ``multipart/form-data`` parser: ``feed(data)`` → events, ``close()`` at the end.

    Events: ``("part", [(name, value), ...])`` when a part's head is complete (names
    lower-case), ``("data", bytes)`` for its body (any number of pieces), ``("end", None)``
    when the part ends. ``close()`` raises :class:`BadRequest` if the final delimiter never
    came.
    """

    def __init__(self, boundary: bytes, *, max_parts: int = 1000, max_head: int = 8 * KiB,
                 max_headers: int = 32, max_total: int = 16 * MiB) -> None:
        self._delim = b"\r\n--" + boundary
        self._buf = b"\r\n"  # so the first delimiter looks like every other one
        self._state = PREAMBLE
        self.parts = 0
        self.total = 0
        self.max_parts = max_parts
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_total = max_total

    @property
    def done(self) -> bool:
        return self._state == EPILOGUE

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        self.total += len(data)
        if self.total > self.max_total:
            raise PayloadTooLarge(f"multipart body larger than {self.max_total} bytes")
        if self._state == EPILOGUE:
            return []  # RFC 2046: the epilogue is ignored
        buf = self._buf + data if self._buf else data
        events: list[tuple[str, Any]] = []
        delim = self._delim
        while True:
            state = self._state
            if state == BODY or state == PREAMBLE:
                at = _find(buf, delim)
                if at < 0:
                    keep = len(delim) - 1  # a delimiter may be cut across two reads
                    if state == BODY and len(buf) > keep:
                        events.append(("data", buf[:-keep]))
                    buf = buf[-keep:]
                    break
                if state == BODY:
                    if at:
                        events.append(("data", buf[:at]))
                    events.append(("end", None))
                buf = buf[at + len(delim):]
                self._state = AFTER_DELIMITER
            elif state == AFTER_DELIMITER:
                if len(buf) < 2:
                    break
                if buf[:2] == b"--":
                    self._state = EPILOGUE
                    buf = b""
                    break
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > 256:
                        raise BadRequest("malformed multipart delimiter line")
                    break
                if buf[:eol].strip(b" \t"):  # only transport padding may follow (§5.1.1)
                    raise BadRequest("malformed multipart delimiter line")
                buf = buf[eol + 2:]
                self.parts += 1
                if self.parts > self.max_parts:
                    raise PayloadTooLarge(f"more than {self.max_parts} multipart parts")
                self._state = HEADERS
            elif state == HEADERS:
                end = buf.find(b"\r\n\r\n")
                if buf.startswith(b"\r\n"):
                    end, skip = 0, 2  # a part with no header lines
                else:
                    skip = 4
                if end < 0:
                    if len(buf) > self.max_head:
                        raise PayloadTooLarge("multipart part head too large")
                    break
                if end > self.max_head:
                    raise PayloadTooLarge("multipart part head too large")
                events.append(("part", self._parse_head(buf[:end])))
                buf = buf[end + skip:]
                self._state = BODY
            else:
                break
        self._buf = buf
        return events

    def _parse_head(self, raw: bytes) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        if not raw:
            return headers
        lines = raw.split(b"\r\n")
        if len(lines) > self.max_headers:
            raise PayloadTooLarge(f"more than {self.max_headers} headers in a multipart part")
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or b"\x00" in line:
                raise BadRequest("malformed header line in a multipart part")
            try:
                text = value.strip().decode("utf-8")
            except UnicodeDecodeError:
                text = value.strip().decode("latin-1")
            headers.append((name.decode("latin-1").lower(), text))
        return headers

    def close(self) -> None:
        """The body ended: it must have ended with the final delimiter."""
        if self._state != EPILOGUE:
            raise BadRequest("incomplete multipart body (no final boundary)")


# Characters Windows refuses in a file name (and ':' would name an NTFS stream).
_WINDOWS_BAD = str.maketrans({c: "_" for c in '<>:"|?*'})
# Names Windows gives to devices, whatever the extension (``NUL.txt`` is the null device).
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{kind}{n}" for kind in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"])


def safe_filename(raw: str, default: str = "upload") -> str:
    """A client's file name reduced to a base name that is safe to join to a folder.

    Keeps the last path component (``/`` and ``\\`` both separate: the client may run
    Windows), drops control and invisible formatting characters, replaces the characters
    Windows refuses, strips leading dots and spaces (no ``..``, no hidden file) and trailing
    ones (Windows drops them), prefixes a Windows device name (``NUL.txt`` -> ``_NUL.txt``),
    and cuts to 255 UTF-8 bytes keeping the extension. An empty ``raw`` (a browser's empty
    file input) stays empty; a name with nothing left becomes ``default``. Unicode letters are
    kept (NFC-normalised).
    """
    if not raw:
        return ""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.translate(_WINDOWS_BAD).strip(" .\t")
    name = name.lstrip(".")
    if not name:
        return default
    stem, dot, ext = name.partition(".")
    if stem.upper().rstrip() in _WINDOWS_DEVICES:
        name = "_" + name
    encoded = name.encode("utf-8")
    if len(encoded) > 255:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext.encode("utf-8")) > 32:
            stem, ext = name, ""
        keep = 255 - len(ext.encode("utf-8")) - len(dot)
        stem = stem.encode("utf-8")[:keep].decode("utf-8", "ignore")
        name = stem + dot + ext
    return name


class Part:
    """One part of a streamed form: ``name``, ``filename`` (``None`` for a plain field; a
    safe base name, see :func:`safe_filename`), ``raw_filename`` (what the client sent),
    ``content_type``, ``headers``; read it with ``async for chunk in part`` or ``await
    part.read()``. A part must be consumed before the next one is read (unread data is
    skipped)."""

    def __init__(self, reader: MultipartReader, headers: list[tuple[str, str]]) -> None:
        self._reader = reader
        self.headers = dict(headers)
        disposition = self.headers.get("content-disposition")
        if disposition is None:
            raise BadRequest("multipart part without content-disposition")
        kind, params = parse_options_header(disposition)
        if kind != "form-data" or "name" not in params:
            raise BadRequest("multipart part is not form-data with a name")
        self.name: str = params["name"]
        #: The file name exactly as the client sent it (``../../app.py``): never a path.
        self.raw_filename: str | None = params.get("filename")
        self.filename: str | None = (None if self.raw_filename is None
                                     else safe_filename(self.raw_filename))
        self.content_type: str = self.headers.get(
            "content-type", "application/octet-stream" if self.filename is not None
            else "text/plain")
        self.size = 0
        self.finished = False

    def __repr__(self) -> str:
        return f"<Part {self.name!r} filename={self.filename!r} {self.content_type}>"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while not self.finished:
            piece = await self._reader._next_data(self)
            if piece is None:
                break
            yield piece

    async def read(self, limit: int | None = None) -> bytes:
        """The whole part; over ``limit`` bytes answers 413."""
        out = bytearray()
        async for piece in self:
            out += piece
            if limit is not None and len(out) > limit:
                raise PayloadTooLarge(f"form field {self.name!r} larger than {limit} bytes")
        return bytes(out)


class _Raised(Exception):
    """Stands in for a reader's error once it was raised (see ``MultipartReader._failure``)."""


_RAISED = _Raised()


class MultipartReader:
    """Streams the parts of ``res``'s request body: ``async for part in MultipartReader(res)``.

    Limits: ``max_parts`` (1000), ``max_total`` (the server's ``max_body``), ``max_head``
    (8 KiB per part head). Reading from the socket pauses while more than ``high_water``
    parsed bytes wait for the consumer.
    """

    def __init__(self, res: Any, *, max_parts: int = 1000, max_total: int | None = None,
                 max_head: int = 8 * KiB, high_water: int = 1 * MiB) -> None:
        req = res.request
        boundary = boundary_of(req.get_header("content-type"))
        limit = max_total if max_total is not None else res.limits.max_body
        if req.content_length is not None and req.content_length > limit:
            raise PayloadTooLarge(f"multipart body larger than {limit} bytes")
        self._res = res
        self._parser = MultipartParser(boundary, max_parts=max_parts, max_head=max_head,
                                       max_total=limit)
        self._events: list[tuple[str, Any]] = []
        self._error: BaseException | None = None
        self._error_raised = False
        self._ended = False
        self._queued = 0
        self._paused = False
        self._high_water = high_water
        self._waiter: asyncio.Future[None] | None = None
        self._current: Part | None = None
        self._pos = 0
        res.on_data(self._on_data)
        # The connection tells this reader when the body cannot complete (client gone,
        # malformed chunking, body timeout): no more chunks will come.
        res.on_body_failed(self._on_body_failed)

    def _on_body_failed(self, exc: BaseException) -> None:
        if self._error is None and not self._ended:
            self._error = exc
            self._wake()

    def _on_data(self, res: Any, chunk: bytes, is_end: bool) -> None:
        if self._error is not None:
            return
        try:
            if chunk:
                events = self._parser.feed(chunk)
                self._events += events
                for kind, value in events:
                    if kind == "data":
                        self._queued += len(value)
            if is_end:
                self._parser.close()
                self._ended = True
        except Exception as exc:
            self._error = exc
        if self._queued > self._high_water and not self._paused and not self._ended:
            self._paused = True
            res.pause()
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next_event(self) -> tuple[str, Any] | None:
        while True:
            if self._pos < len(self._events):
                event = self._events[self._pos]
                self._pos += 1
                if self._pos > 64:
                    del self._events[:self._pos]
                    self._pos = 0
                if event[0] == "data":
                    self._queued -= len(event[1])
                    if self._paused and self._queued <= self._high_water // 2:
                        self._paused = False
                        self._res.resume()
                return event
            if self._error is not None:
                raise self._failure()
            if self._ended:
                return None
            self._waiter = self._res.loop.create_future()
            await self._waiter

    def _failure(self) -> BaseException:
        """The error to raise to the consumer: the first one, then a plain 400.

        Neither the error nor the current part is kept once raised: the error's traceback
        runs through the consumer's frames, which hold this reader, and the part holds its
        reader: cycles that would keep the reader, its buffers and the response alive until
        a garbage collection.
        """
        self._current = None
        if self._error_raised:
            return BadRequest("the multipart body could not be read")
        self._error_raised = True
        error = self._error
        assert error is not None
        self._error = _RAISED
        return error

    async def _next_data(self, part: Part) -> bytes | None:
        if part is not self._current:
            return None
        event = await self._next_event()
        if event is None:
            raise BadRequest("incomplete multipart body")
        if event[0] == "data":
            part.size += len(event[1])
            return event[1]
        part.finished = True
        self._current = None  # read to its end: the part <-> reader cycle is not needed
        return None

    def __aiter__(self) -> MultipartReader:
        return self

    async def __anext__(self) -> Part:
        current = self._current
        if current is not None and not current.finished:
            async for _ in current:
                pass  # skip what the consumer did not read
        while True:
            event = await self._next_event()
            if event is None:
                raise StopAsyncIteration
            if event[0] == "part":
                self._current = Part(self, event[1])
                return self._current


class UploadFile:
    """A file field of :func:`get_form`: ``filename``, ``raw_filename``, ``content_type``,
    ``size``, ``headers`` and ``file`` (a ``SpooledTemporaryFile``, in memory up to
    ``spool_max`` bytes).

    ``filename`` is a safe base name (:func:`safe_filename`: ``../../app.py`` -> ``app.py``);
    ``raw_filename`` is the client's value unchanged, for display or logging only.
    """

    def __init__(self, filename: str, content_type: str, headers: dict[str, str],
                 spool_max: int) -> None:
        #: What the client sent, unchanged: never use it as a path.
        self.raw_filename = filename
        self.filename = safe_filename(filename)
        self.content_type = content_type
        self.headers = headers
        self.size = 0
        self.file: Any = tempfile.SpooledTemporaryFile(max_size=spool_max)

    def __repr__(self) -> str:
        return f"<UploadFile {self.filename!r} {self.content_type} {self.size} bytes>"

    @property
    def in_memory(self) -> bool:
        """False once the content was spooled to a temporary file on disk."""
        return not bool(getattr(self.file, "_rolled", False))

    def read(self) -> bytes:
        """The whole content (blocking read: call from an executor for big files)."""
        self.file.seek(0)
        return bytes(self.file.read())

    def close(self) -> None:
        self.file.close()


class FormData:
    """Fields and files of a form: ``form["name"]`` (last value), ``form.get_all(name)``,
    ``form.fields``, ``form.files``; close it (or use ``with``) to delete spooled files."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.files: dict[str, list[UploadFile]] = {}

    def __getitem__(self, name: str) -> str | UploadFile:
        if name in self.files:
            return self.files[name][-1]
        return self.fields[name][-1]

    def __contains__(self, name: object) -> bool:
        return name in self.fields or name in self.files

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def get_all(self, name: str) -> list[Any]:
        return [*self.fields.get(name, ()), *self.files.get(name, ())]

    def close(self) -> None:
        for uploads in self.files.values():
            for upload in uploads:
                upload.close()

    def __enter__(self) -> FormData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def get_form(res: Any, *, max_parts: int = 1000, max_fields: int = 1000,
                   max_files: int = 100, max_field_size: int = 1 * MiB,
                   max_file_size: int | None = None, max_total: int | None = None,
                   spool_max: int = 1 * MiB, encoding: str = "utf-8") -> FormData:
    """Read a whole ``multipart/form-data`` body (``await res.get_form()``).

    Over a limit answers 413; a broken body 400; another content type 415. File contents
    above ``spool_max`` bytes go to a temporary file (page-cache writes, ~40 µs per MiB here,
    so they are done inline).
    """
    reader = MultipartReader(res, max_parts=max_parts, max_total=max_total)
    form = FormData()
    fields = files = 0
    try:
        async for part in reader:
            if part.filename is None:
                fields += 1
                if fields > max_fields:
                    raise PayloadTooLarge(f"more than {max_fields} form fields")
                raw = await part.read(max_field_size)
                try:
                    value = raw.decode(encoding)
                except UnicodeDecodeError:
                    raise BadRequest(f"form field {part.name!r} is not valid {encoding}") from None
                form.fields.setdefault(part.name, []).append(value)
                continue
            files += 1
            if files > max_files:
                raise PayloadTooLarge(f"more than {max_files} files in the form")
            upload = UploadFile(part.raw_filename or "", part.content_type, part.headers,
                                spool_max)
            form.files.setdefault(part.name, []).append(upload)
            async for piece in part:
                upload.size += len(piece)
                if max_file_size is not None and upload.size > max_file_size:
                    raise PayloadTooLarge(f"file {part.raw_filename!r} larger than "
                                          f"{max_file_size} bytes")
                upload.file.write(piece)
            upload.file.seek(0)
    except BaseException:
        form.close()
        raise
    return form
