"""Noticing that a client hung up while its connection is not being read.

A connection stops reading while its client reads nothing of what we send (``pause_writing``
pauses reading too, so that a client cannot pile up pipelined requests in our memory). Its
end-of-stream then waits unread in the kernel: a client that half-closes (``shutdown(SHUT_WR)``)
and stops reading would leave the handler waiting in ``send_chunk`` or ``on_writable`` until
the send timeout. While reading is paused, :func:`watch` asks the event loop to report the
socket readable, and then asks the kernel whether the peer closed its side (``POLLRDHUP``),
without reading any byte; if it did, the connection is dropped (``abort_transport``): the
exchange in flight aborts, ``on_aborted`` runs and the handler's wait ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
from typing import Any

__all__ = ["watch", "unwatch"]

log = logging.getLogger("corkweb.error")

_RDHUP: int = getattr(select, "POLLRDHUP", 0)
_GONE = _RDHUP | select.POLLHUP | select.POLLERR

# PERF: the watches live here, keyed by connection, rather than in a slot of every
# connection: only connections whose client stopped reading have one, and a slot would cost
# 8 bytes for each idle keep-alive connection.
_watches: dict[Any, tuple[asyncio.AbstractEventLoop, int]] = {}


def watch(conn: Any) -> None:
    """Drop ``conn`` (a ``CorkedProtocol``) if its peer closes its side before
    :func:`unwatch` (the watch ends by itself once the socket turns readable)."""
    if not _RDHUP or conn in _watches:
        return  # without POLLRDHUP (not Linux), the send timeout is what ends the wait
    sock = conn.transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM:
        return
    # Our own descriptor: add_reader refuses the transport's, and if the transport closes
    # first its number may be reused by another connection; this one still names our socket.
    fd = os.dup(sock.fileno())
    loop = conn.loop
    _watches[conn] = (loop, fd)
    loop.add_reader(fd, _readable, conn, fd)


def unwatch(conn: Any) -> None:
    """End ``conn``'s watch, if it has one."""
    entry = _watches.pop(conn, None)
    if entry is not None:
        loop, fd = entry
        loop.remove_reader(fd)
        os.close(fd)


def _readable(conn: Any, fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | _RDHUP)
    gone = any(events & _GONE for _, events in poller.poll(0))
    # Either way the watch ends: readable without a hang-up means the client sent more bytes
    # (pipelined requests), which stay unread until it reads again; watching on would spin.
    unwatch(conn)
    if gone:
        log.info("dropping %s: it closed its side and reads nothing", conn.remote_address())
        conn.abort_transport()
