"""Faults: clients that vanish, handlers that fail, slow readers, descriptor exhaustion.

The server runs in a subprocess (``server_app.py``) so that its descriptors, memory and CPU
time can be read from /proc, and its stderr checked for traceback storms.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from .helpers import exchange, parse_stream

MiB = 1024 * 1024
GET = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n"


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashing client or a middlebox does."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def settle(server, baseline_fds: int) -> None:
    """Wait (bounded) until the server has seen every close: its descriptors are back."""
    deadline = time.monotonic() + 10
    while server.fds() > baseline_fds and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc: there is no signal from another process
    assert server.fds() == baseline_fds, (server.fds(), baseline_fds)


def healthy(server) -> None:
    ex = exchange(server.port, GET % b"/")
    assert ex.statuses == [200, 200]


def test_resets_mid_request_and_mid_response(spawn_server) -> None:
    server = spawn_server("head_timeout=5.0", "write_high_water=65536")
    healthy(server)
    base_fds = server.fds()

    def storm() -> None:
        for i in range(60):
            s = connect(server.port)
            kind = i % 4
            if kind == 0:  # mid-head
                s.sendall(b"GET / HTTP/1.1\r\nHo")
            elif kind == 1:  # mid-body, the handler awaits it
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nab")
            elif kind == 2:  # mid-response: 1 MiB answer, 1 KiB read
                s.sendall(GET % b"/big")
                s.recv(1024)
            else:  # a pipeline of large answers, none read
                s.sendall((GET % b"/big") * 8)
            reset(s)

    storm()  # warm-up: allocator pools and caches reach their working size
    settle(server, base_fds)
    warm_rss = server.rss()
    for _ in range(3):
        storm()
    settle(server, base_fds)
    healthy(server)
    assert server.rss() < warm_rss + 8 * MiB, (warm_rss, server.rss())
    assert "Traceback" not in server.stderr(), server.stderr()[-3000:]


def test_handler_exceptions_under_load(spawn_server) -> None:
    server = spawn_server()
    failures: list[BaseException] = []
    per_thread = 40

    def client(n: int) -> None:
        try:
            with connect(server.port) as s:
                paths = [b"/boom" if i % 3 == 0 else b"/aboom" if i % 3 == 1 else b"/"
                         for i in range(per_thread)]
                # Pipelined in batches of 10: the errors must not break order or framing.
                for k in range(0, per_thread, 10):
                    batch = paths[k:k + 10]
                    s.sendall(b"".join(GET % p for p in batch))
                    data = b""
                    while len(parse_stream(data)[0]) < len(batch):
                        chunk = s.recv(65536)
                        assert chunk, "server closed"
                        data += chunk
                    responses, rest = parse_stream(data)
                    assert rest == b""
                    assert [r.status for r in responses] == [500 if p != b"/" else 200
                                                             for p in batch]
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    healthy(server)
    # Every failure is logged with its traceback (never swallowed), and nothing else is.
    log = server.stderr()
    booms = 8 * sum(1 for i in range(per_thread) if i % 3 != 2)
    assert log.count("Traceback") == booms, log[-3000:]
    assert log.count("RuntimeError: boom for the fault tests") \
        + log.count("RuntimeError: async boom for the fault tests") == booms


def test_slow_reader_memory_is_bounded(spawn_server) -> None:
    """A client that sends requests for large answers and reads nothing."""
    server = spawn_server("write_high_water=65536")
    healthy(server)
    before = server.rss()
    with connect(server.port) as s:
        s.setblocking(False)
        sent = 0
        # Ask for 200 MiB of answers; the server must stop reading instead of buffering them.
        requests = (GET % b"/big") * 200
        deadline = time.monotonic() + 5
        while sent < len(requests) and time.monotonic() < deadline:
            try:
                sent += s.send(requests[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.05)  # our send buffer is full: the server stopped reading
        time.sleep(0.5)  # let the server do whatever it would do with what it read
        grown = server.rss() - before
        assert grown < 24 * MiB, grown / MiB
        s.setblocking(True)
        s.settimeout(10)
        got = 0
        while got < 3 * MiB:  # and it still answers once the client reads
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
        reset(s)
    healthy(server)


def test_slow_reader_flood_of_small_requests(spawn_server) -> None:
    """Pipelined requests flood in while no answer is read: reading pauses, memory stays."""
    server = spawn_server("write_high_water=65536")
    healthy(server)
    before = server.rss()
    with connect(server.port) as s:
        s.setblocking(False)
        request = GET % b"/"
        flood = request * 20000  # 0.5 MiB of requests, sent over and over
        sent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sent < 64 * MiB:
            offset = sent % len(flood)
            try:
                sent += s.send(flood[offset:])
            except BlockingIOError:
                time.sleep(0.05)  # our send buffer is full: the server stopped reading
        grown = server.rss() - before
        assert sent < 64 * MiB, "the server kept reading requests it could not answer"
        assert grown < 24 * MiB, grown / MiB
        reset(s)
    healthy(server)


def test_descriptor_exhaustion_without_busy_loop(spawn_server) -> None:
    """With its descriptors used up, the server neither spins nor dies, and recovers."""
    server = spawn_server(nofile=48)
    healthy(server)
    clients = []
    try:
        for _ in range(80):  # more than the server can accept; the rest wait in the backlog
            clients.append(connect(server.port))
        cpu = server.cpu_seconds()
        time.sleep(1.0)  # measuring CPU time over a second: a busy loop would use ~1 s
        spent = server.cpu_seconds() - cpu
        assert spent < 0.3, spent
    finally:
        for s in clients:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            ex = exchange(server.port, GET % b"/", timeout=2)
            if ex.statuses == [200, 200]:
                break
        except (AssertionError, OSError):
            pass
        assert time.monotonic() < deadline, "the server did not recover"
    assert server.proc.poll() is None
    assert "Traceback" not in server.stderr(), server.stderr()[-3000:]


def test_big_answers_to_a_reader_that_vanishes(spawn_server) -> None:
    """Clients that read part of a large answer and close normally (FIN, not RST)."""
    server = spawn_server()
    healthy(server)
    base_fds = server.fds()
    for _ in range(30):
        s = connect(server.port)
        s.sendall((GET % b"/big") * 2)
        s.recv(4096)
        s.close()
    settle(server, base_fds)
    healthy(server)
    assert "Traceback" not in server.stderr()

