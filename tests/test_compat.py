"""socketify.py's names in corkweb/compat.py and the places they reach, in-process on real
sockets (the socketify-style programs are tests/test_socketify_programs.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from corkweb import App, AppListenOptions, AppOptions, BodyBytes, MiddlewareRouter, middleware
from corkweb.compat import listen_spec


def test_app_listen_options_check_their_fields() -> None:
    assert AppListenOptions(port=3000, host="0.0.0.0")["port"] == 3000
    assert AppListenOptions(domain="/tmp/x.sock")["uds"] == "/tmp/x.sock"
    with pytest.raises(ValueError, match="port must be an int"):
        AppListenOptions(port="3000")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain .* excludes host and port"):
        AppListenOptions(port=1, domain="/tmp/x.sock")
    with pytest.raises(ValueError, match="options=4"):
        AppListenOptions(port=1, options=4)


def test_listen_accepts_every_form_socketify_does() -> None:
    assert listen_spec(3000) == {"host": "127.0.0.1", "port": 3000}
    assert listen_spec(None) == {"host": "127.0.0.1", "port": 0}
    assert listen_spec(AppListenOptions(port=80, host="::1")) == {"host": "::1", "port": 80}
    assert listen_spec(AppListenOptions(domain="/s")) == {"uds": "/s"}
    assert listen_spec({"port": 1, "domain": "/s"}) == {"port": 1, "uds": "/s"}
    with pytest.raises(TypeError, match="unknown keys \\['prot'\\]"):
        listen_spec({"prot": 1})
    with pytest.raises(TypeError, match="listen\\(\\) takes a port"):
        listen_spec("3000")


def test_app_takes_socketify_parameters_and_refuses_unknown_ones() -> None:
    App(None, 10, 10, 100, True, 0.01, templates=None)
    App(request_response_factory_max_items=10, idle_relaxation_time=0, templates=None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'template'"):
        App(template="x")
    with pytest.raises(TypeError, match="an AppOptions or an ssl.SSLContext"):
        App("key.pem")
    with pytest.raises(ValueError, match="cert_file_name is required"):
        AppOptions(key_file_name="key.pem")


def test_lifespan_false_runs_no_hooks(serve: Any) -> None:
    app = App(lifespan=False, templates=None)
    ran: list[str] = []
    app.on_start(lambda: ran.append("start"))
    app.get("/", lambda res, req: res.end("ok"))
    server = serve(app)
    assert httpx.get(server.url + "/").text == "ok"
    assert ran == []


def test_body_bytes_is_bytes_and_reads_like_bytesio() -> None:
    body = BodyBytes(b"hello world")
    assert body == b"hello world" and isinstance(body, bytes) and len(body) == 11
    assert body.read(5) == b"hello" and body.tell() == 5 and body.read() == b" world"
    assert body.seek(-5, 2) == 6 and body.read(2) == b"wo"
    assert type(body.getvalue()) is bytes and body.getvalue() == b"hello world"
    assert json.loads(BodyBytes(b"[1]")) == [1]


def test_middleware_continues_from_the_group_data(serve: Any) -> None:
    app = App(templates=None)

    def auth(res: Any, req: Any, data: Any = None) -> Any:
        return {"user": "ana"}

    def add(res: Any, req: Any, data: Any = None) -> Any:
        return {**data, "role": "admin"}

    def show(res: Any, req: Any, data: Any = None) -> None:
        res.end(data)

    MiddlewareRouter(app, auth).get("/a", middleware(add, show))
    app.get("/b", middleware(show))  # alone: the chain starts from None
    server = serve(app)
    assert httpx.get(server.url + "/a").json() == {"user": "ana", "role": "admin"}
    assert httpx.get(server.url + "/b").text == ""


def test_json_serializer_reaches_responses_bodies_and_earlier_websocket_routes(
        serve: Any) -> None:
    app = App(templates=None)
    route = app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send({"a": 1})})
    app.json_serializer(json)  # after the WebSocket route: it changes too
    assert route.json_dumps({"a": 1}) == b'{"a": 1}'

    @app.post("/echo")
    async def echo(res: Any, req: Any) -> None:
        res.end(await res.get_json())

    server = serve(app)
    r = httpx.post(server.url + "/echo", content=b'{"b":2}',
                   headers={"content-type": "application/json"})
    assert r.text == '{"b": 2}'


def test_static_beside_an_explicit_route_either_order(tmp_path: Any, serve: Any) -> None:
    (tmp_path / "a.txt").write_text("file")
    app = App(templates=None)
    app.get("/", lambda res, req: res.end("explicit first"))
    app.static("/", tmp_path)
    app.static("/s", tmp_path)
    app.get("/s/", lambda res, req: res.end("explicit second"))
    server = serve(app)
    assert httpx.get(server.url + "/").text == "explicit first"
    assert httpx.get(server.url + "/s/").text == "explicit second"
    assert httpx.get(server.url + "/a.txt").text == "file"
    assert httpx.get(server.url + "/s/a.txt").text == "file"
    with pytest.raises(ValueError, match="duplicate route"):
        app2 = App(templates=None)
        app2.get("/x", lambda res, req: res.end(""))
        app2.get("/x", lambda res, req: res.end(""))


def test_send_chunk_waits_for_a_slow_client(serve: Any) -> None:
    import socket
    import threading

    app = App(templates=None)
    waited = threading.Event()
    outcomes: list[tuple[bool, bool]] = []
    finished = threading.Event()
    size = 8 * 1024 * 1024
    block = b"x" * 65536

    @app.get("/stream")
    async def stream(res: Any, req: Any) -> None:
        sent = 0
        while True:
            pending = res.send_chunk(block, size)
            if not pending.done():
                waited.set()  # the client reads slower than we send: send_chunk waits
            ok, done = await pending
            sent += len(block)
            if not ok or done:
                outcomes.append((ok, done))
                finished.set()
                return

    server = serve(app)
    port = int(server.url.rsplit(":", 1)[1])
    # A client that reads everything, but only once the server had to wait. (A tiny receive
    # buffer here would make loopback TCP crawl on delayed ACKs: the kernel's own buffers and
    # the transport's high-water mark are what send_chunk waits on.)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        assert waited.wait(10)
        received = 0
        while received < size:
            data = sock.recv(1 << 20)
            assert data
            received += len(data) if received else len(data.partition(b"\r\n\r\n")[2])
    assert finished.wait(10) and outcomes[-1] == (True, True)


def test_proxied_remote_address_comes_from_the_proxy_protocol_header(serve: Any) -> None:
    import socket

    app = App(templates=None, proxy_protocol=True)
    app.get("/", lambda res, req: res.end({
        "proxied": res.get_proxied_remote_address(),
        "bytes": list(res.get_proxied_remote_address_bytes() or b""),
        "remote": res.get_remote_address()}))
    server = serve(app)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"PROXY TCP4 203.0.113.7 192.0.2.1 41000 80\r\n"
                     b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert json.loads(data.partition(b"\r\n\r\n")[2]) == {
        "proxied": "203.0.113.7", "bytes": [203, 0, 113, 7], "remote": "203.0.113.7"}
    # Without a PROXY header there is no proxied address.
    plain = App(templates=None)
    plain.get("/", lambda res, req: res.end(str(res.get_proxied_remote_address())))
    assert httpx.get(serve(plain).url + "/").text == "None"
