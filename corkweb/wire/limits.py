"""Safe defaults for everything a peer controls (DESIGN.md §4).

One frozen ``Limits`` object is built at start-up and shared by every connection; an app
overrides fields with ``App(limits=Limits(max_body=...))`` or ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Limits:
    """Per-connection limits and timeouts. Sizes are bytes, times are seconds."""

    #: Request line (method, target, version); longer gets 414 (RFC 9112 §3).
    max_request_line: int = 8 * KiB
    #: Whole request head (request line + header lines); larger gets 431.
    max_head: int = 16 * KiB
    #: Number of header lines; more gets 431.
    max_headers: int = 100
    #: Request body; larger gets 413 (from Content-Length before reading, else while reading).
    max_body: int = 16 * MiB
    #: Total time to receive a request head from its first byte (slowloris); then 408.
    head_timeout: float = 10.0
    #: Longest silence while a request body is being received; then 408 and close.
    body_timeout: float = 30.0
    #: Idle time allowed between requests on a keep-alive connection; then it is closed.
    keepalive_timeout: float = 5.0
    #: Pipelined requests parsed ahead of the one being answered before reading pauses.
    max_pipeline: int = 32
    #: Transport write buffer above which writing counts as backpressured.
    write_high_water: int = 256 * KiB
    #: Open connections per worker; beyond it new ones get 503 and are closed.
    max_connections: int = 10_000
    #: Seconds a graceful shutdown waits for in-flight requests before closing them.
    drain_timeout: float = 10.0
    #: Seconds an idle keep-alive connection is still read once a graceful shutdown began: a
    #: request already on its way is answered (with ``connection: close``), then it closes.
    drain_idle: float = 1.0
    #: Longest time a client may read nothing while a response waits to be sent; then the
    #: connection is dropped (memory is bounded anyway; this frees the connection itself).
    send_timeout: float = 60.0
    #: Largest chunk extension or trailer section accepted in a chunked body.
    max_trailer: int = 8 * KiB

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
