"""Static files: ``app.static(prefix, directory)`` and ``res.sendfile(path)``.

What a file response does (RFC 9110 section numbers beside each rule):

* ``content-type`` from the extension (``; charset=utf-8`` for text), ``etag`` (size and
  mtime, strong), ``last-modified``, ``accept-ranges: bytes``, optional ``cache-control``.
* ``304 Not Modified`` for a matching ``If-None-Match`` (weak comparison, §13.1.2) or, only
  when that header is absent, an ``If-Modified-Since`` not older than the file (§13.2.2).
* One byte range (``bytes=a-b``, ``a-``, ``-n``): ``206`` with ``content-range``; a range that
  starts past the end is ``416`` with ``content-range: bytes */size`` (§14.2, §15.5.17). Several
  ranges, or a syntax we do not accept, are ignored and the whole file is sent (§14.2 allows
  it). ``If-Range`` with a different validator also gives the whole file (§13.1.5).
* ``HEAD`` gets the same head, no body.
* Precompressed siblings: ``app.js.br`` / ``app.js.gz`` are sent with ``content-encoding`` when
  the client accepts that coding; ``vary: accept-encoding`` whenever a sibling exists.
* Folders: ``prefix/docs/`` serves ``docs/index.html``; ``prefix/docs`` redirects (301) to
  ``prefix/docs/`` so that relative links in the page work. No listings.

Containment (``app.static`` only; ``res.sendfile`` trusts the path it is given): the route
parameter is already percent-decoded once by the router, and never decoded again (so
``%252e%252e`` is the harmless name ``%2e%2e``). A name with a NUL byte is refused with 400; one
with a backslash, an empty, ``.`` or ``..`` segment, a leading ``/`` or a dot-file segment
(``.env``, ``.git``; ``.well-known`` is allowed) gets 404. Then the real path (symlinks
resolved) must lie inside the real folder, or 404: a symlink that points outside is not served.

How bytes leave: a file up to ``inline_max`` (256 KiB) is read inline and leaves in the same
write as the head. # PERF: a page-cache ``pread`` of 64 KiB costs ~6 µs here (open, read
and close ~15 µs), while one hop to the executor and back costs ~150 µs on this loaded 2-core
machine, so small files are read inline. Bigger files go through
``CorkedProtocol.sendfile``: zero-copy ``os.sendfile`` with backpressure, or executor reads
over TLS; the event loop never blocks on them.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from collections.abc import Coroutine
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

from .errors import BadRequest, NotFound

__all__ = ["StaticFiles", "send_file", "parse_range"]

KiB = 1024
_UNSATISFIABLE = (-1, -1)
_TEXT_TYPES = ("application/javascript", "application/json", "application/xml",
               "image/svg+xml", "application/manifest+json")
_ctypes: dict[str, str] = {}


def guess_type(path: str) -> str:
    """The media type for ``path`` by its extension, ``charset=utf-8`` added for text."""
    ext = os.path.splitext(path)[1].lower()
    found = _ctypes.get(ext)
    if found is None:
        guessed = mimetypes.guess_type("x" + ext)[0] or "application/octet-stream"
        if guessed.startswith("text/") or guessed in _TEXT_TYPES:
            guessed += "; charset=utf-8"
        found = _ctypes[ext] = guessed
    return found


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single ``bytes=`` range of a ``size``-byte file.

    ``None`` means "ignore the header, send everything" (several ranges, another unit, bad
    syntax); ``(-1, -1)`` means unsatisfiable (416).
    """
    if len(header) > 200 or not header.startswith("bytes="):
        return None
    spec = header[6:].strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if not (first.isascii() and last.isascii()):
        return None
    if first == "":
        if last == "":
            return None
        n = int(last)
        if n == 0 or size == 0:
            return _UNSATISFIABLE
        return (max(0, size - n), size - 1)
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        return None
    if start >= size:
        return _UNSATISFIABLE
    return (start, min(end, size - 1))


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of ``If-None-Match`` against our ETag (RFC 9110 §13.1.2)."""
    if header.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == bare:
            return True
    return False


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        since = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # an invalid date is ignored (RFC 9110 §13.1.3)
    return int(mtime) <= since


def _accepts(accept_encoding: str, coding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows ``coding`` (q > 0, or ``*`` with q > 0)."""
    from .middleware.compression import parse_accept_encoding

    qs = parse_accept_encoding(accept_encoding)
    q = qs.get(coding, qs.get("*", 0.0))
    return q > 0


def _line(name: bytes, value: str) -> bytes:
    return name + value.encode("latin-1") + b"\r\n"


_dates: dict[int, str] = {}


def _http_date(mtime: float) -> str:
    second = int(mtime)
    found = _dates.get(second)
    if found is None:
        if len(_dates) > 1024:
            _dates.clear()
        found = _dates[second] = formatdate(second, usegmt=True)
    return found


def send_file(res: Any, req: Any, path: str, *, precompressed: bool = True,
              cache_control: str | None = None, content_type: str | None = None,
              download_name: str | None = None, inline_max: int = 256 * KiB,
              check_inside: str | None = None,
              st: os.stat_result | None = None) -> Coroutine[Any, Any, None] | None:
    """Answer ``req`` with the file at ``path`` (conditional, ranged, maybe precompressed).

    Returns ``None`` when the answer is complete, or a coroutine that sends a large body; the
    caller returns or awaits it. Raises :class:`NotFound` if there is no such regular file.
    Options: ``content_type`` (default: from the extension), ``download_name`` (adds
    ``content-disposition: attachment``), ``cache_control``, ``precompressed`` (serve
    ``.br``/``.gz`` siblings), ``inline_max``. ``st`` is the file's ``os.stat`` result when the
    caller has it already.
    """
    if st is None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            raise NotFound("no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound("no such file")
    ctype = content_type or guess_type(path)
    send_path, coding = path, None
    vary = False
    accept = req.get_header("accept-encoding") if precompressed else None
    # Siblings are looked for only when the client accepts some coding: a client that sends
    # no Accept-Encoding gets identity without ``vary``, which any cache may serve to anyone.
    # PERF: saves two stat calls per request for such clients.
    if accept:
        for suffix, name in ((".br", "br"), (".gz", "gzip")):
            try:
                sib = os.stat(path + suffix)
            except OSError:
                continue
            if not stat.S_ISREG(sib.st_mode):
                continue
            if check_inside is not None and not _inside(path + suffix, check_inside):
                continue
            vary = True
            if coding is None and _accepts(accept, name):
                send_path, coding, st = path + suffix, name, sib
    size = st.st_size
    etag = f'"{size:x}-{st.st_mtime_ns:x}{"-" + coding if coding else ""}"'
    last_modified = _http_date(st.st_mtime)
    # PERF: the header lines are built here from known-safe values (hex digits, an HTTP date,
    # a media type from our table) and appended directly: write_header's per-character name
    # check cost ~7 µs for the five headers of every file response.
    lines = [_line(b"etag: ", etag), _line(b"last-modified: ", last_modified)]
    if vary:
        lines.append(b"vary: accept-encoding\r\n")
    if cache_control:
        res.write_header("cache-control", cache_control)
    inm = req.get_header("if-none-match")
    if inm is not None:
        not_modified = _etag_matches(inm, etag)
    else:
        ims = req.get_header("if-modified-since")
        not_modified = ims is not None and _not_modified_since(ims, st.st_mtime)
    if not_modified:
        _add_lines(res, lines)
        res.write_status(304).end()
        return None
    if content_type is None:
        lines.append(_line(b"content-type: ", ctype))
    else:
        res.write_header("content-type", ctype)
    lines.append(b"accept-ranges: bytes\r\n")
    if coding:
        lines.append(_line(b"content-encoding: ", coding))
    _add_lines(res, lines)
    if download_name is not None:
        from urllib.parse import quote

        res.write_header("content-disposition",
                         "attachment; filename*=UTF-8''" + quote(download_name, safe=""))
    start, length = 0, size
    rng = req.get_header("range")
    if rng is not None and req.method in ("GET", "HEAD"):
        if_range = req.get_header("if-range")
        if if_range is None or if_range.strip() in (etag, last_modified):
            span = parse_range(rng, size)
            if span == _UNSATISFIABLE:
                res.write_status(416).write_header("content-range", f"bytes */{size}")
                res.end()
                return None
            if span is not None:
                start, length = span[0], span[1] - span[0] + 1
                res.write_status(206)
                res.write_header("content-range", f"bytes {span[0]}-{span[1]}/{size}")
    if req.method == "HEAD" or length == 0:
        res.try_end(b"", length)
        return None
    fd = os.open(send_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    if length <= inline_max:
        try:
            data = os.pread(fd, length, start)
        finally:
            os.close(fd)
        if len(data) != length:
            raise OSError(f"{send_path} changed size while being read")
        res.try_end(data, length)
        return None
    res.try_end(b"", length)  # the head, with content-length; the body follows
    return _send_large(res, fd, start, length)


def _add_lines(res: Any, lines: list[bytes]) -> None:
    res.add_header_lines(lines)


async def _send_large(res: Any, fd: int, start: int, length: int) -> None:
    try:
        await res.sendfile_body(fd, start, length)
    finally:
        os.close(fd)


def _inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root if root.endswith(os.sep) else root + os.sep)


class StaticFiles:
    """The handler behind ``app.static(prefix, directory)``.

    Options: ``index`` (file served for a folder, ``None`` for none), ``max_age`` (seconds,
    sets ``cache-control: public, max-age=N``), ``precompressed`` (serve ``.br``/``.gz``
    siblings), ``allow_hidden`` (serve dot-files), ``inline_max`` (bytes read inline).
    """

    def __init__(self, directory: str | os.PathLike[str], *, index: str | None = "index.html",
                 max_age: int | None = None, precompressed: bool = True,
                 allow_hidden: bool = False, inline_max: int = 256 * KiB) -> None:
        root = os.path.realpath(os.fspath(directory))
        if not os.path.isdir(root):
            raise ValueError(f"static folder {directory!r} does not exist or is not a folder")
        self.root = root
        self.index = index
        self.cache_control = None if max_age is None else f"public, max-age={int(max_age)}"
        self.precompressed = precompressed
        self.allow_hidden = allow_hidden
        self.inline_max = inline_max

    def register(self, group: Any, prefix: str) -> None:
        """Add ``GET prefix/:file<path>`` and ``GET prefix/`` to ``group`` (an app or a group)."""
        prefix = prefix.rstrip("/")
        group.get(prefix + "/:file<path>", self)
        group.get(prefix + "/", self)

    def resolve(self, name: str) -> tuple[str, os.stat_result]:
        """The real path inside the folder for the decoded route parameter ``name``, and its
        ``os.stat`` result.

        Raises :class:`BadRequest` (NUL byte) or :class:`NotFound` (anything that could leave
        the folder, or does not exist).
        """
        if "\x00" in name:
            raise BadRequest("NUL byte in the file name")
        if "\\" in name:
            raise NotFound("no such file")
        parts = name.split("/")
        if parts and parts[-1] == "":
            parts.pop()  # "docs/" names the folder
        for part in parts:
            if part in ("", ".", "..") or (
                part[0] == "." and not self.allow_hidden and part != ".well-known"
            ):
                raise NotFound("no such file")
        root = self.root
        path = root
        try:
            st = os.stat(root) if not parts else None
            # PERF: lstat each component below the (already real) root instead of
            # os.path.realpath, which also walks the root's own components: one syscall for
            # a top-level file instead of five. A symlink hands over to realpath.
            for i, part in enumerate(parts):
                path = path + os.sep + part
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    real = os.path.realpath(os.path.join(path, *parts[i + 1:]))
                    if real != root and not real.startswith(root + os.sep):
                        raise NotFound("no such file")  # a symlink that points outside
                    return real, os.stat(real)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            raise NotFound("no such file") from None
        assert st is not None
        return path, st

    def __call__(self, res: Any, req: Any) -> Coroutine[Any, Any, None] | None:
        name = req.get_parameter("file", "")
        path, found = self.resolve(name)
        st: os.stat_result | None = found
        if stat.S_ISDIR(found.st_mode):
            if self.index is None:
                raise NotFound("no such file")
            if name and not name.endswith("/"):
                query = req.get_full_url()[len(req.get_url()):]
                res.redirect(req.get_url() + "/" + query, 301)
                return None
            path = os.path.join(path, self.index)
            if not _inside(path, self.root):
                raise NotFound("no such file")
            st = None
        elif name.endswith("/"):
            raise NotFound("no such file")  # a file is not a folder
        return send_file(res, req, path, precompressed=self.precompressed,
                         cache_control=self.cache_control, inline_max=self.inline_max,
                         check_inside=self.root, st=st)
