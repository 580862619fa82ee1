"""Two parsers side by side for the fuzz test: corkweb's RequestParser and h11 as the oracle.

Each returns the messages it accepted completely — ``(method, target, body)`` — and whether
it then refused the input. Only whole-input parsing matters here; the per-byte consistency of
corkweb's parser is checked separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import h11

from corkweb.errors import ProtocolError
from corkweb.wire.limits import Limits
from corkweb.wire.parser import ParserSink, RequestHead, RequestParser

Message = tuple[str, str, bytes]

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")


def _origin(target: str) -> str:
    """An absolute-form target reduced to the path and query that corkweb routes on."""
    m = _ABSOLUTE.match(target)
    if m is None:
        return target
    return target[m.end():] or "/"


@dataclass
class Outcome:
    messages: list[Message] = field(default_factory=list)
    refused: bool = False
    status: int | None = None
    detail: str = ""


class _Sink(ParserSink):
    def __init__(self, out: Outcome) -> None:
        self.out = out
        self.head: RequestHead | None = None
        self.body = b""

    def on_request(self, head: RequestHead) -> None:
        self.head, self.body = head, b""

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk

    def on_request_end(self) -> None:
        assert self.head is not None
        self.out.messages.append((self.head.method, _origin(self.head.url), self.body))
        self.head = None


def corkweb_parse(data: bytes, pieces: int = 1, limits: Limits | None = None) -> Outcome:
    """Parse ``data`` (fed in ``pieces`` parts); stops at an upgrade or a refusal."""
    out = Outcome()
    parser = RequestParser(_Sink(out), limits or Limits())
    size = max(1, -(-len(data) // pieces))
    try:
        for i in range(0, len(data), size):
            if parser.feed(data[i:i + size]) is not None:
                break  # an upgrade: what follows is another protocol
    except ProtocolError as exc:
        out.refused, out.status, out.detail = True, exc.status, exc.message
    return out


def h11_parse(data: bytes) -> Outcome:
    out = Outcome()
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    method = target = ""
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Request):
                method, body = event.method.decode(), b""
                target = _origin(event.target.decode("latin-1"))
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                out.messages.append((method, target, body))
                if conn.our_state is h11.SEND_RESPONSE:
                    conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                    conn.send(h11.EndOfMessage())
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    break  # closing, or switching protocols
    except h11.RemoteProtocolError as exc:
        out.refused, out.status, out.detail = True, exc.error_status_hint, str(exc)
    return out
