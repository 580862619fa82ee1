"""The access log: off costs nothing, on writes one checked, escaped line per response."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from cli_process import CLIProcess

from corkweb import App
from corkweb.server.access_log import (
    DEFAULT_FORMAT,
    AccessFormat,
    AccessLogConnection,
    access_log_protocol,
)
from corkweb.server.http import HTTPConnection
from corkweb.server.runner import connection_class
from corkweb.server.serve import Server


def test_off_by_default_means_the_plain_connection_class() -> None:
    """No flag, no check: the hot path runs HTTPConnection itself, not a subclass."""
    assert connection_class() is HTTPConnection
    assert Server(App(templates=None).handle)._protocol_class is HTTPConnection


def test_proxy_protocol_wraps_the_access_log_connection() -> None:
    """The PROXY header is read before anything else; the access log then logs its client."""
    cls = connection_class(access_log=True, proxy_protocol=True)
    assert cls.__name__ == "ProxyProtocolConnection" and issubclass(cls, AccessLogConnection)


def test_formats_are_checked_at_start_up() -> None:
    assert AccessFormat("{method} {status}").text == "{method} {status}"
    with pytest.raises(ValueError, match="unknown access log field 'nope'"):
        AccessFormat("{nope}")
    with pytest.raises(ValueError, match="bad access log format"):
        AccessFormat("{status:q}")
    cls = access_log_protocol("{status}")
    assert issubclass(cls, AccessLogConnection) and cls.access_format.text == "{status}"
    assert access_log_protocol().access_format.text == DEFAULT_FORMAT


def handler(res: Any, req: Any) -> Any:
    if req.path == "/missing":
        res.write_status(404).end("no")
        return None
    if req.path == "/stream":
        res.write("ab")
        res.end("cd")
        return None

    async def later() -> None:
        await asyncio.sleep(0.01)
        res.end("hello")

    return later()


async def _serve(fmt: str, payload: bytes, expect: int) -> bytes:
    server = Server(handler, protocol_class=access_log_protocol(fmt))
    port = (await server.start("127.0.0.1", 0))[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect or not data.endswith((b"hello", b"no",
                                                                      b"0\r\n\r\n")):
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            data += chunk
        writer.close()
        return data
    finally:
        await server.shutdown(1.0)


def test_one_line_per_response_in_order_with_status_bytes_and_duration(caplog) -> None:
    caplog.set_level(logging.INFO, logger="corkweb.access")
    pipelined = (b"GET /slow?x=1 HTTP/1.1\r\nhost: a\r\nuser-agent: t\"ua\r\n\r\n"
                 b"GET /missing HTTP/1.1\r\nhost: a\r\n\r\n"
                 b"GET /stream HTTP/1.1\r\nhost: a\r\n\r\n")
    fmt = "{remote} {method} {url} {path} {query} {version} {status} {bytes} {duration_ms:.3f} {user_agent}"
    data = asyncio.run(_serve(fmt, pipelined, 3))
    lines = [r.getMessage() for r in caplog.records if r.name == "corkweb.access"]
    assert len(lines) == 3, lines
    first, second, third = (line.split(" ") for line in lines)
    assert first[:7] == ["127.0.0.1", "GET", "/slow?x=1", "/slow", "x=1", "1.1", "200"]
    assert second[:7] == ["127.0.0.1", "GET", "/missing", "/missing", "", "1.1", "404"]
    assert third[6] == "200"
    # The bytes of the three responses add up to everything that was sent.
    assert int(first[7]) + int(second[7]) + int(third[7]) == len(data)
    assert float(first[8]) >= 10.0  # the handler slept 10 ms
    assert first[9] == 't\\"ua'  # a quote from the client is escaped
    assert second[9] == "-"


def test_repeated_plain_heads_are_each_logged(caplog) -> None:
    # A head seen before is read from the parser's table and handed over as one whole request
    # (on_whole_request, which does on_request's work in line): the access log must still see,
    # time and log every one, on one read and across reads.
    caplog.set_level(logging.INFO, logger="corkweb.access")
    head = b"GET /missing HTTP/1.1\r\nhost: a\r\n\r\n"

    async def run() -> None:
        server = Server(handler, protocol_class=access_log_protocol("{path} {status}"))
        port = (await server.start("127.0.0.1", 0))[0][1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            received = b""
            for count in (1, 1, 3, 1, 2):
                writer.write(head * count)
                want = received.count(b"HTTP/1.1 404") + count
                while received.count(b"HTTP/1.1 404") < want or not received.endswith(b"no"):
                    received += await asyncio.wait_for(reader.read(65536), 5)
            writer.close()
        finally:
            await server.shutdown(1.0)

    asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if r.name == "corkweb.access"]
    assert lines == ["/missing 404"] * 8


def test_control_characters_cannot_forge_lines(caplog) -> None:
    caplog.set_level(logging.INFO, logger="corkweb.access")
    # Header values may carry HTAB and obs-text (RFC 9110 §5.5); neither reaches the log raw.
    request = b"GET /missing HTTP/1.1\r\nhost: a\r\nreferer: x\ty\x85z\r\n\r\n"
    asyncio.run(_serve('"{referer}"', request, 1))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "corkweb.access"]
    assert line == '"x\\ty\\x85z"'


def test_cli_access_log_goes_to_stdout_with_the_format() -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0", "--access-log",
                    "--access-log-format", "{method} {path} {status} {bytes}") as cli:
        cli.ready()
        import httpx

        httpx.get(cli.url + "/users/3", timeout=5)
        m = cli.wait_for(re.compile(r"^GET /users/3 200 (\d+)$"))
        assert int(m.group(1)) > 0
        assert cli.stop() == 0
        assert any(line.startswith("GET /users/3") for line in cli.out)  # stdout


def test_cli_without_access_log_logs_no_requests() -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0") as cli:
        cli.ready()
        import httpx

        httpx.get(cli.url + "/", timeout=5)
        assert cli.stop() == 0
        assert not any("GET /" in line for line in cli.out + cli.err)
