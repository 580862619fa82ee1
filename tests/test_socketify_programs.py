"""socketify-style programs (tests/socketify_programs/) run as real processes on real sockets,
importing ``socketify`` from a shim that only re-exports corkweb's public names.

Each test starts a program, waits for the line its listen handler prints, and talks to it with
httpx, raw sockets or the ``websockets`` client. docs/porting-from-socketify.md is the map from
socketify's API to what these programs exercise.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cli_process import REPO, CLIProcess

PROGRAMS = Path(__file__).resolve().parent / "socketify_programs"
LISTENING = re.compile(r"listening on (\d+)")


def program_env(**extra: str) -> dict[str, str]:
    """The shim first, then this checkout: ``import socketify`` is corkweb here only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORKWEB_", "_CORKWEB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(PROGRAMS / "shim"), str(REPO), str(PROGRAMS)])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PORT", "0")
    env.update(extra)
    return env


class Program(CLIProcess):
    """``python PROGRAM`` (or ``python -m corkweb ARGS`` with ``module=True``) in
    tests/socketify_programs/, with the shim first on the path."""

    def __init__(self, *args: str, module: bool = False, **env: str) -> None:
        if module:
            super().__init__(*args, cwd=PROGRAMS, env=program_env(**env))
        else:
            super().__init__(*args[1:], cwd=PROGRAMS, env=program_env(**env),
                             script=PROGRAMS / args[0])

    def listening(self, timeout: float = 20.0) -> int:
        self.port = int(self.wait_for(LISTENING, timeout).group(1))
        return self.port


def get(port: int, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def post(port: int, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def raw(port: int, request: bytes) -> bytes:
    """Send one request, read until the server closes or stops sending (it may cut)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


# -- hello world, listen handlers ------------------------------------------------------------


def test_hello_world_with_listen_handlers(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "hello.sock")
    with Program("hello.py", SOCK=sock_path) as prog:
        port = prog.listening()
        assert prog.wait_for(r"listening on \d+ host 127\.0\.0\.1")
        prog.wait_for(re.escape(f"listening on {sock_path}"))
        # The second handler raised: logged with its traceback, and both sockets still serve.
        prog.wait_for(r"the listen handler .* raised \(the server goes on serving\)")
        prog.wait_for("RuntimeError: a listen handler that fails")
        r = get(port, "/")
        assert (r.status_code, r.text) == (200, "Hello World!")
        transport = httpx.HTTPTransport(uds=sock_path)
        with httpx.Client(transport=transport) as client:
            assert client.get("http://localhost/").text == "Hello World!"
        assert prog.stop() == 0


# -- router, middleware, async, uploads, errors ---------------------------------------------


@pytest.fixture(scope="module")
def basics() -> Any:
    with Program("basics.py") as prog:
        prog.listening()
        yield prog


def test_router_basics(basics: Program) -> None:
    port = basics.port
    assert get(port, "/").text == "Hello :)"
    assert get(port, "/user/1").text == "Hello user 1!"
    r = get(port, "/user/2")  # set_yield falls through to the catch-all
    assert (r.status_code, r.text) == (404, "Not Found")
    r = get(port, "/parts")
    assert r.text == "I can send in parts!"
    assert r.headers["transfer-encoding"] == "chunked"
    # A deliberate difference: the status written after a header is kept (socketify: 200).
    r = get(port, "/status")
    assert (r.status_code, r.headers["x-order"]) == (201, "header-first")


def test_json_serializer_module_whose_dumps_returns_str(basics: Program) -> None:
    r = get(basics.port, "/app")
    assert r.headers["content-type"] == "application/json"
    # the stdlib json module's spacing: proof that app.json_serializer(json) is in use
    assert r.text == '{"loop": "future", "proxied": null, "remote": "127.0.0.1"}'
    r = post(basics.port, "/json", content=b'[{"name": "Ana"}]',
             headers={"content-type": "application/json"})
    assert r.text == '{"first": "Ana"}'
    # A deliberate difference: JSON must come as JSON (socketify parses any body).
    r = post(basics.port, "/json", content=b'[{"name": "Ana"}]',
             headers={"content-type": "text/plain"})
    assert r.status_code == 500  # basics.py's on_error answers every error with 500
    assert "expected a JSON body" in r.text


def test_run_async_keeps_a_sync_handlers_response_open(basics: Program) -> None:
    r = get(basics.port, "/delayed?delay=0.05")
    assert (r.status_code, r.text) == (200, "Hello after 0.05")
    mark = basics.mark()
    r = get(basics.port, "/forgetful")  # the coroutine ended without answering
    assert r.status_code == 500
    basics.wait_for(r"GET /forgetful: the run_async coroutine finished without responding",
                    after=mark)


def test_trigger_error_goes_to_the_error_handler(basics: Program) -> None:
    r = get(basics.port, "/report")
    assert (r.status_code, r.text) == (500, "handled: reported")


def test_middleware_chains(basics: Program) -> None:
    port = basics.port
    auth = {"authorization": "Bearer x"}
    assert get(port, "/mw", headers=auth).text == "HELLO"
    r = get(port, "/mw")
    assert (r.status_code, r.text) == (403, "not authorized")
    assert get(port, "/mw_sync", headers=auth).text == "hi"
    assert get(port, "/mw_sync").status_code == 403
    assert get(port, "/router", headers=auth).text == "Hello"
    # middleware(...) as the handler of a group route continues from the group's data
    assert get(port, "/router_more", headers=auth).text == "HELLO"
    assert get(port, "/router_more").status_code == 403


def test_uploads(basics: Program) -> None:
    port = basics.port
    body = b"0123456789" * 50_000
    assert post(port, "/stream", content=body).text == "got 500000 bytes"
    r = post(port, "/whole", content=body)
    assert r.json() == {"getvalue": 500000, "read": "012", "bytes": 500000}
    assert post(port, "/form", content=b"a=1&b=2&a=3",
                headers={"content-type": "application/x-www-form-urlencoded"}).json() == {
        "a": "3", "b": "2"}
    assert post(port, "/text", content="héllo".encode()).text == "text: héllo"


def test_a_handler_failing_after_write_gets_a_500(basics: Program) -> None:
    # Nothing had left the cork buffer: the partial answer is replaced by the error answer.
    r = get(basics.port, "/fails_after_write")
    assert (r.status_code, r.text) == (500, "handled: broken after write")


def test_a_handler_failing_after_the_head_left_cuts_the_connection(basics: Program) -> None:
    mark = basics.mark()
    data = raw(basics.port, b"GET /fails_after_flush HTTP/1.1\r\nhost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no last chunk: the client sees a cut body
    basics.wait_for(r"handler for GET /fails_after_flush failed after the response head was "
                    r"sent", after=mark)
    basics.wait_for("closing the connection", after=mark)
    basics.wait_for("RuntimeError: broken after the head left", after=mark)


# -- static files, sendfile, send_chunk, templates --------------------------------------------


def test_static_files_beside_explicit_routes() -> None:
    with Program("static_site.py") as prog:
        port = prog.listening()
        r = get(port, "/")
        assert r.headers["x-explicit"] == "yes"  # the explicit route won over the folder's
        assert r.text == (PROGRAMS / "public" / "index.html").read_text()
        assert get(port, "/css/site.css").text == "body { color: teal; }\n"
        assert get(port, "/assets/").text == "assets index, explicit"
        assert get(port, "/assets/css/site.css").status_code == 200
        r = get(port, "/index.html", headers={"range": "bytes=0-5"})
        assert (r.status_code, r.text) == (206, "<html>")
        r = get(port, "/missing")
        assert (r.status_code, r.text) == (404, "Not Found")
        r = get(port, "/page?m=you")
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.text.strip() == "<h1>Hi</h1><p>you</p>"
        size = 3_000_000
        with httpx.stream("GET", f"http://127.0.0.1:{port}/stream?size={size}",
                          timeout=10) as r:
            assert r.headers["content-length"] == str(size)
            body = b"".join(r.iter_bytes())
        assert len(body) == size and body[:512] == bytes(range(256)) * 2


# -- WebSockets ----------------------------------------------------------------------------


def test_websocket_pubsub_and_backpressure() -> None:
    async def scenario(port: int) -> None:
        url = f"ws://127.0.0.1:{port}"
        async with websockets.connect(url + "/chat") as a, \
                websockets.connect(url + "/chat") as b:
            assert await a.recv() == "welcome"  # a str is a text frame
            assert await b.recv() == "welcome"
            await a.send("from a")
            assert await b.recv() == "from a"
            await a.send("all")
            assert await a.recv() == "app.publish reaches everyone"
            assert await a.recv() == "from the app"
            assert await b.recv() == "from the app"
            # ws.publish did not come back to its sender: a's next message is a fresh one
            await b.send("from b")
            assert await a.recv() == "from b"
            await a.send("frag")
            assert await a.recv() == "one two three"
            await a.send("addr")
            assert await a.recv() == b"\x7f\x00\x00\x01"  # bytes are a binary frame
        async with websockets.connect(url + "/") as echo:
            # the WebSocket route takes the upgrade though the HTTP route "/" is more specific
            await echo.send("echo")
            assert await echo.recv() == "echo"
        assert get(port, "/").text == "Nothing to see here!"
        async with websockets.connect(url + "/chat") as a:
            assert await a.recv() == "welcome"
            await a.send("bye")
            await a.wait_closed()
            assert (a.close_code, a.close_reason) == (1000, "bye")

    with Program("ws_pubsub.py") as prog:
        port = prog.listening()
        asyncio.run(scenario(port))
        # A client that reads nothing until the server says it waits for drain.
        messages = read_flood(port, prog)
    assert len(messages) == 20_001
    assert messages[-2].startswith("message 019999")
    assert int(messages[-1].split()[2]) >= 1  # drain came, and the loop went on from it


def read_flood(port: int, prog: Program) -> list[str]:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request, TextMessage

    client = WSConnection(ConnectionType.CLIENT)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(client.send(Request(host="127.0.0.1", target="/flood")))
        prog.wait_for(r"waiting for drain after (\d+) messages")
        messages: list[str] = []
        partial = ""
        while not messages or not messages[-1].startswith("done"):
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            client.receive_data(data)
            for event in client.events():
                if isinstance(event, AcceptConnection):
                    continue
                assert isinstance(event, TextMessage), event
                partial += event.data
                if event.message_finished:
                    messages.append(partial)
                    partial = ""
    return messages
# -- lifecycle: close, forks, TLS, the command line ------------------------------------------


def test_app_close_ends_run() -> None:
    with Program("shutdown.py") as prog:
        port = prog.listening()
        assert get(port, "/").text == "Hello!"
        assert get(port, "/shutdown").text == "Good bye!"
        assert prog.proc.wait(20) == 0
        prog.wait_for("on_shutdown ran")
        prog.wait_for("App Closed!")


def test_forked_processes_share_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Program("forks.py", PORT=str(port)) as prog:
        prog.wait_count(f"listening on {port}", 3)
        pids = set()
        for _ in range(60):
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(f"http://127.0.0.1:{port}/", timeout=10).text)
            if len(pids) > 1:
                break
        assert len(pids) > 1, "SO_REUSEPORT spreads connections over the processes"
        assert prog.stop(signal.SIGTERM) == 0
        prog.wait_for("children stopped")  # a signalled child exits instead of going on


def test_tls_with_app_options(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path, ca_path = (str(tmp_path / n) for n in ("c.pem", "k.pem", "ca.pem"))
    Path(cert_path).write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    Path(key_path).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"1234")))
    ca.cert_pem.write_to_path(ca_path)
    with Program("tls.py", KEY=key_path, CERT=cert_path) as prog:
        port = prog.listening()
        ctx = ssl.create_default_context(cafile=ca_path)
        r = httpx.get(f"https://127.0.0.1:{port}/", verify=ctx, timeout=10)
        assert r.text == "Hello over TLS"


def test_socketify_command_line_with_workers_and_ws() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def ws_echo() -> list[Any]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/anything") as ws:
            first = await ws.recv()
            await ws.send(b"\x01\x02")
            return [first, await ws.recv()]

    with Program("cli_app:run", "--port", str(port), "--workers", "2", "--ws",
                 "cli_app:websocket", module=True) as prog:
        prog.wait_for(re.escape(f"Listening on http://127.0.0.1:{port} now"))
        assert get(port, "/").text == "Hello from the command line"
        assert asyncio.run(ws_echo()) == ["Hello World!", b"\x01\x02"]
        assert prog.stop() == 0


def test_socketify_command_line_refuses_what_it_cannot_run() -> None:
    with Program("cli_app:websocket", module=True) as prog:
        assert prog.proc.wait(20) == 1
        prog.wait_for(r"corkweb: error: 'cli_app:websocket' must be a function taking the App")
