"""Tier 3: the HTTP/1.1 server over real sockets (httpx and raw bytes)."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
from conftest import parse_responses, raw_exchange

from corkweb import App, HTTPError, Limits


def make_app(**kwargs) -> App:
    app = App(templates=None, **kwargs)

    @app.get("/")
    def home(res, req):
        res.end("Hello, World!")

    @app.get("/json")
    def js(res, req):
        res.end({"message": "Hello", "n": [1, 2]})

    @app.post("/echo")
    async def echo(res, req):
        body = await res.get_data()
        res.write_header("x-len", str(len(body))).end(body)

    @app.post("/json-echo")
    async def json_echo(res, req):
        res.end({"got": await res.get_json()})

    @app.post("/form")
    async def form(res, req):
        res.end(await res.get_form_urlencoded())

    @app.post("/text")
    async def text(res, req):
        res.end((await res.get_text()).upper())

    @app.post("/stream-in")
    def stream_in(res, req):
        sizes = []

        def on_data(r, chunk, is_end):
            sizes.append(len(chunk))
            if is_end:
                r.end(f"{sum(sizes)}")

        res.on_data(on_data)

    @app.get("/chunks")
    def chunks(res, req):
        res.write("one,")
        res.write("two,")
        res.end("three")

    @app.get("/sized")
    def sized(res, req):
        assert res.try_end(b"abc", 6) == (True, False)
        ok, done = res.try_end(b"def", 6)
        assert done

    @app.get("/req")
    def request_info(res, req):
        res.end({
            "method": req.get_method(), "url": req.get_url(), "full": req.get_full_url(),
            "q": req.get_query("q"), "qs": req.get_queries(), "h": req.get_header("x-h"),
            "cookies": req.get_cookies(), "cookie": req.get_cookie("a"),
            "ancient": req.is_ancient(), "remote": res.get_remote_address(),
        })

    @app.get("/boom")
    def boom(res, req):
        raise RuntimeError("kaboom")

    @app.get("/aboom")
    async def aboom(res, req):
        await asyncio.sleep(0)
        raise RuntimeError("async kaboom")

    @app.get("/teapot")
    def teapot(res, req):
        raise HTTPError(418, "short and stout")

    @app.get("/forgot")
    def forgot(res, req):
        res.write_header("x-a", "1")  # and never ends

    @app.get("/redirect")
    def redirect(res, req):
        res.redirect("/", 301)

    @app.get("/nocontent")
    def nocontent(res, req):
        res.write_status(204).end()

    @app.get("/close")
    def close(res, req):
        res.end("bye", end_connection=True)

    @app.get("/slow")
    async def slow(res, req):
        await asyncio.sleep(0.2)
        res.end("slow done")

    return app


@pytest.fixture
def server(serve):
    return serve(make_app())


def test_hello_and_headers(server) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.text == "Hello, World!"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "13"
    assert "GMT" in r.headers["date"]


def test_json_response(server) -> None:
    r = httpx.get(server.url + "/json")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"message": "Hello", "n": [1, 2]}


def test_keep_alive_reuses_one_connection(server) -> None:
    with httpx.Client() as c:
        for _ in range(5):
            assert c.get(server.url + "/").status_code == 200
    data = raw_exchange(server.port, [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                      b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n"],
                        until_close=False, expect=2, timeout=1)
    assert [r.status for r in parse_responses(data)] == [200, 200]


def test_http10_closes_unless_keep_alive(server) -> None:
    data = raw_exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")
    (r,) = parse_responses(data)
    assert r.status == 200 and r.header("connection") == "close"
    data = raw_exchange(server.port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                        until_close=False, expect=1, timeout=1)
    assert parse_responses(data)[0].header("connection") == "keep-alive"


def test_http10_streaming_is_close_delimited(server) -> None:
    data = raw_exchange(server.port, b"GET /chunks HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head and body == b"one,two,three"


def test_connection_close_request(server) -> None:
    data = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                                     b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
    rs = parse_responses(data)
    assert len(rs) == 1 and rs[0].header("connection") == "close"


def test_end_connection_closes(server) -> None:
    data = raw_exchange(server.port, b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n")
    assert parse_responses(data)[0].body == b"bye"


def test_requests_pipelined_after_a_closing_answer_are_not_run(serve) -> None:
    # RFC 9112 §9.6: after an answer with "connection: close" the server must not process the
    # requests that came after it on the connection; their handlers never run.
    app = App(templates=None)
    ran: list[str] = []

    @app.get("/close")
    def close(res, req):
        ran.append("close")
        res.end("bye", end_connection=True)

    @app.post("/delete")
    def delete(res, req):
        ran.append("delete")
        res.end("deleted")

    @app.get("/slow-close")
    async def slow_close(res, req):
        await asyncio.sleep(0.05)
        ran.append("slow-close")
        res.end("bye", end_connection=True)

    srv = serve(app)
    first = b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n"
    later = b"POST /delete HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    plain = b"GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\n"
    for _ in range(3):  # the first time through llhttp, then from the plain-head table
        ran.clear()
        rs = parse_responses(raw_exchange(srv.port, first + later + later))
        assert [r.body for r in rs] == [b"bye"] and ran == ["close"]
        ran.clear()
        rs = parse_responses(raw_exchange(srv.port, plain))
        assert [r.body for r in rs] == [b"bye"] and ran == ["close"]
    ran.clear()
    slow = b"GET /slow-close HTTP/1.1\r\nHost: a\r\n\r\n"
    rs = parse_responses(raw_exchange(srv.port, slow + later))
    assert [r.body for r in rs] == [b"bye"] and ran == ["slow-close"]


def test_pipelining_in_order_with_async_in_the_middle(server) -> None:
    reqs = (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping"
            b"GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    rs = parse_responses(raw_exchange(server.port, reqs))
    assert [r.body for r in rs] == [b"Hello, World!", b"slow done", b"ping",
                                    b'{"message":"Hello","n":[1,2]}']


def test_content_length_and_chunked_request_bodies(server) -> None:
    r = httpx.post(server.url + "/echo", content=b"x" * 100_000)
    assert r.status_code == 200 and r.headers["x-len"] == "100000"

    def gen():
        yield b"ab"
        yield b"cd"

    r = httpx.post(server.url + "/echo", content=gen())  # chunked
    assert r.content == b"abcd"
    raw = (b"POST /stream-in HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert parse_responses(raw_exchange(server.port, raw))[0].body == b"11"


def test_body_helpers(server) -> None:
    assert httpx.post(server.url + "/json-echo", json={"a": [1]}).json() == {"got": {"a": [1]}}
    r = httpx.post(server.url + "/json-echo", content=b"{nope",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.text
    assert httpx.post(server.url + "/form", data={"a": "1", "b": "x y"}).json() == {
        "a": "1", "b": "x y"}
    assert httpx.post(server.url + "/text", content="héllo".encode()).text == "HÉLLO"
    r = httpx.post(server.url + "/text", content=b"\xff\xfe")
    assert r.status_code == 400


def test_expect_100_continue(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        data = b""
        while not parse_responses(data):
            data += s.recv(1000)
        assert parse_responses(data)[0].body == b"hello"


def test_expect_continue_not_sent_when_handler_answers_without_reading(server) -> None:
    data = raw_exchange(server.port, b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                                     b"Content-Length: 5\r\n\r\n", until_close=False,
                        expect=1, timeout=1)
    assert b"100 Continue" not in data
    assert parse_responses(data)[0].status == 405


def test_head_has_same_headers_and_no_body(server) -> None:
    data = raw_exchange(server.port, b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-length: 13" in head and body == b""
    r = httpx.head(server.url + "/json")
    assert r.headers["content-type"] == "application/json" and r.content == b""


def test_chunked_response_and_try_end(server) -> None:
    r = httpx.get(server.url + "/chunks")
    assert r.headers["transfer-encoding"] == "chunked" and r.text == "one,two,three"
    r = httpx.get(server.url + "/sized")
    assert r.headers["content-length"] == "6" and r.text == "abcdef"


def test_request_api(server) -> None:
    r = httpx.get(server.url + "/req?q=1&q=2&e=", headers={"x-h": "hv", "cookie": "a=1; b=two%20w"})
    assert r.json() == {
        "method": "GET", "url": "/req", "full": "/req?q=1&q=2&e=", "q": "1",
        "qs": {"q": ["1", "2"], "e": [""]}, "h": "hv", "cookies": {"a": "1", "b": "two w"},
        "cookie": "1", "ancient": False, "remote": "127.0.0.1",
    }


def test_handler_errors_are_answered_and_logged(server, caplog) -> None:
    r = httpx.get(server.url + "/boom")
    assert r.status_code == 500
    r = httpx.get(server.url + "/aboom", headers={"accept": "application/json"})
    assert r.status_code == 500 and r.json()["status"] == 500
    assert "kaboom" in caplog.text and "async kaboom" in caplog.text
    r = httpx.get(server.url + "/teapot")
    assert r.status_code == 418 and "short and stout" in r.text
    r = httpx.get(server.url + "/forgot")
    assert r.status_code == 500 and r.headers.get("x-a") is None
    assert "without responding" in caplog.text


def test_not_found_and_method_not_allowed(server) -> None:
    assert httpx.get(server.url + "/nope").status_code == 404
    r = httpx.delete(server.url + "/")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = httpx.get(server.url + "/nope", headers={"accept": "text/html"})
    assert r.headers["content-type"].startswith("text/html") and "<h1>404" in r.text


def test_redirect_and_no_content(server) -> None:
    r = httpx.get(server.url + "/redirect")
    assert r.status_code == 301 and r.headers["location"] == "/"
    data = raw_exchange(server.port, b"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n",
                        until_close=False, expect=1, timeout=1)
    assert b"content-length" not in data.lower() and data.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("payload,status", [
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n", 413),
])
def test_malformed_requests_get_status_and_close(server, payload, status) -> None:
    data = raw_exchange(server.port, payload)
    (r,) = parse_responses(data)
    assert r.status == status and r.header("connection") == "close"


def test_valid_request_before_garbage_is_answered(server) -> None:
    data = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\x00\r\n\r\n")
    rs = parse_responses(data)
    assert [r.status for r in rs] == [200, 400]


def test_body_limit_while_streaming_chunks(serve) -> None:
    server = serve(make_app(limits=Limits(max_body=1000)))
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = raw_exchange(server.port, [head, b"400\r\n" + b"x" * 1024 + b"\r\n"])
    (r,) = parse_responses(data)
    assert r.status == 413
    r = httpx.post(server.url + "/echo", content=b"y" * 1001)
    assert r.status_code == 413


def test_connection_cap_answers_503(serve) -> None:
    server = serve(make_app(limits=Limits(max_connections=2)))
    a = socket.create_connection(("127.0.0.1", server.port))
    b = socket.create_connection(("127.0.0.1", server.port))
    try:
        a.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert b"200 OK" in a.recv(1000)
        data = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert parse_responses(data)[0].status == 503
    finally:
        a.close()
        b.close()


def test_client_abort_calls_on_aborted(serve) -> None:
    app = App(templates=None)
    aborted = asyncio.Event()
    seen = {}

    @app.get("/wait")
    def wait(res, req):
        def on_abort(r):
            seen["aborted"] = r.aborted
            r.end("ignored")  # ending an aborted response is a no-op
            loop.call_soon(aborted.set)

        loop = asyncio.get_event_loop()
        res.on_aborted(on_abort)

    @app.get("/check")
    async def check(res, req):
        await asyncio.wait_for(aborted.wait(), 3)
        res.end(str(seen))

    server = serve(app)
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.05)
    s.close()
    assert httpx.get(server.url + "/check").text == "{'aborted': True}"


def test_backpressure_with_try_end_and_on_writable(serve) -> None:
    app = App(templates=None, limits=Limits(write_high_water=64 * 1024))
    total = 8 * 1024 * 1024
    piece = b"z" * 65536
    stats = {"paused": 0}

    @app.get("/big")
    def big(res, req):
        def pump(r, offset=0):
            while True:
                ok, done = r.try_end(piece, total)
                if done:
                    return True
                if not ok:
                    stats["paused"] += 1
                    return False

        res.on_writable(pump)
        res.on_aborted(lambda r: None)
        pump(res)

    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)  # a slow reader: the server must pause, not buffer 8 MiB
        got = 0
        while got < total:
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
    assert stats["paused"] > 0
