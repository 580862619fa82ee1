"""Issue 3: the framework layer over real sockets — routes, groups, middleware, JSON, errors,
lifespan, freezing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import uuid

import httpx
import orjson
import pytest

from corkweb import App, AppFrozenError, HTTPError, NotFound, middleware


def test_decorators_return_the_handler_and_direct_calls_work(serve) -> None:
    app = App(templates=None)

    def plain(res, req):
        res.end("plain")

    assert app.get("/plain", plain) is plain
    for method in ("post", "put", "delete", "patch", "options", "trace"):
        fn = getattr(app, method)("/m")(lambda res, req: res.end(req.get_method()))
        assert callable(fn)

    @app.any("/any")
    def anything(res, req):
        res.end("any " + req.get_method())

    server = serve(app)
    assert httpx.get(server.url + "/plain").text == "plain"
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert httpx.request(method, server.url + "/m").text == method
    assert httpx.request("PATCH", server.url + "/any").text == "any PATCH"


def test_parameters_by_name_and_index_typed_and_wildcards(serve) -> None:
    app = App(templates=None)

    @app.get("/users/:id<int>/posts/:slug")
    def post(res, req):
        res.end({"id": req.get_parameter("id"), "slug": req.get_parameter(1),
                 "params": req.params, "list": req.get_parameters()})

    @app.get("/items/:uid<uuid>")
    def item(res, req):
        res.end(str(type(req.get_parameter("uid")).__name__))

    @app.get("/files/:rest<path>")
    def files(res, req):
        res.end(req.get_parameter("rest"))

    @app.get("/sitemap_*")
    def sitemap(res, req):
        res.end("sitemap " + req.get_url())

    @app.get("/static/*")
    def static(res, req):
        res.end("wild")

    server = serve(app)
    r = httpx.get(server.url + "/users/42/posts/hello%20world").json()
    assert r == {"id": 42, "slug": "hello world", "params": {"id": 42, "slug": "hello world"},
                 "list": [42, "hello world"]}
    assert httpx.get(server.url + "/users/abc/posts/x").status_code == 404
    assert httpx.get(server.url + f"/items/{uuid.uuid4()}").text == "UUID"
    assert httpx.get(server.url + "/files/a/b/c.txt").text == "a/b/c.txt"
    assert httpx.get(server.url + "/sitemap_823.xml").text == "sitemap /sitemap_823.xml"
    assert httpx.get(server.url + "/static/x/y").text == "wild"


def test_priority_is_static_then_param_then_wildcard_whatever_the_order(serve) -> None:
    app = App(templates=None)
    app.get("/a/*", lambda res, req: res.end("wildcard"))
    app.get("/a/:x", lambda res, req: res.end("param"))
    app.get("/a/static", lambda res, req: res.end("static"))
    server = serve(app)
    assert httpx.get(server.url + "/a/static").text == "static"
    assert httpx.get(server.url + "/a/other").text == "param"
    assert httpx.get(server.url + "/a/b/c").text == "wildcard"


def test_head_answered_by_get_and_405_with_allow(serve) -> None:
    app = App(templates=None)
    app.get("/r", lambda res, req: res.end("body"))
    app.post("/r", lambda res, req: res.end("posted"))
    server = serve(app)
    r = httpx.head(server.url + "/r")
    assert r.status_code == 200 and r.headers["content-length"] == "4" and r.content == b""
    r = httpx.put(server.url + "/r")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"


def test_set_yield_falls_through_to_the_next_match(serve) -> None:
    app = App(templates=None)

    @app.get("/page/:name")
    def maybe(res, req):
        if req.get_parameter("name") == "special":
            res.end("special")
        else:
            req.set_yield(True)

    @app.get("/page/*")
    def fallback(res, req):
        res.end("fallback")

    @app.get("/async/:name")
    async def amaybe(res, req):
        await asyncio.sleep(0)
        req.set_yield(True)

    @app.get("/async/*")
    async def afallback(res, req):
        res.end("async fallback")

    server = serve(app)
    assert httpx.get(server.url + "/page/special").text == "special"
    assert httpx.get(server.url + "/page/other").text == "fallback"
    assert httpx.get(server.url + "/async/x").text == "async fallback"


def test_set_yield_from_a_sync_handler_behind_async_middleware_falls_through(serve) -> None:
    # The chain is async because of its middleware, though the handler is sync: the app must
    # await the chain before looking at set_yield (it used to answer 500 "did not respond").
    app = App(templates=None)

    async def slow_auth(res, req, data):
        await asyncio.sleep(0)
        return True

    group = app.router("/g", slow_auth)

    @group.get("/:name")
    def maybe(res, req):
        req.set_yield(True)

    @app.get("/g/*")
    def fallback(res, req):
        res.end("fallback")

    server = serve(app)
    r = httpx.get(server.url + "/g/x")
    assert (r.status_code, r.text) == (200, "fallback")


def test_route_groups_nest_with_prefix_and_middleware(serve) -> None:
    app = App(templates=None)
    calls = []

    def tag(name):
        def mw(res, req, data):
            calls.append(name)
            res.write_header(f"x-{name}", "1")
            return (data or []) + [name]

        return mw

    api = app.router("/api", tag("api"))
    v1 = api.router("/v1", tag("v1"))

    @v1.get("/things/:id")
    def thing(res, req, data):
        res.end({"id": req.get_parameter("id"), "chain": data})

    @api.post("/echo")
    async def echo(res, req, data):
        res.end({"body": await res.get_json(), "chain": data})

    server = serve(app)
    r = httpx.get(server.url + "/api/v1/things/7")
    assert r.json() == {"id": "7", "chain": ["api", "v1"]}
    assert r.headers["x-api"] == "1" and r.headers["x-v1"] == "1"
    assert httpx.post(server.url + "/api/echo", json=[1]).json() == {"body": [1], "chain": ["api"]}
    assert httpx.get(server.url + "/things/7").status_code == 404


def test_middleware_falsy_stops_sync_async_mixed_and_global(serve) -> None:
    app = App(templates=None)

    @app.use
    def server_header(res, req, data):
        res.write_header("x-global", "yes")
        return True

    def auth(res, req, data):
        if req.get_header("authorization") != "Bearer ok":
            res.write_status(401).end("login first")
            return None
        return {"user": "ann"}

    async def load_profile(res, req, data):
        await asyncio.sleep(0)
        return {**data, "profile": "loaded"}

    def handler(res, req, data):
        res.end(data)

    app.get("/private", middleware(auth, load_profile, handler))
    server = serve(app)
    r = httpx.get(server.url + "/private")
    assert r.status_code == 401 and r.text == "login first" and r.headers["x-global"] == "yes"
    r = httpx.get(server.url + "/private", headers={"authorization": "Bearer ok"})
    assert r.json() == {"user": "ann", "profile": "loaded"}


def test_code_after_the_handler_answered_timing_and_headers(serve) -> None:
    app = App(templates=None)
    finished = []

    @app.use
    def timing(res, req, data):
        started = asyncio.get_event_loop().time()
        res.before_head(lambda r: r.write_header("x-status-seen", str(r.status)))
        res.on_finish(lambda r: finished.append((req.get_url(), r.status,
                                                 asyncio.get_event_loop().time() - started)))
        return True

    @app.get("/t")
    async def t(res, req):
        await asyncio.sleep(0.01)
        res.write_status(202).end("ok")

    server = serve(app)
    r = httpx.get(server.url + "/t")
    assert r.status_code == 202 and r.headers["x-status-seen"] == "202"
    assert finished and finished[0][:2] == ("/t", 202) and finished[0][2] >= 0.009


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Unknown:
    pass


def test_json_helpers_dataclasses_datetimes_uuids_and_errors(serve, caplog) -> None:
    uid = uuid.UUID(int=1)
    app = App(templates=None)

    @app.get("/rich")
    def rich(res, req):
        res.send({"p": Point(1, 2), "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
                  "id": uid, "list": [1.5, None, True]})

    @app.get("/bad")
    def bad(res, req):
        res.end({"x": Unknown()})

    @app.get("/cork")
    def cork(res, req):
        res.cork_end([Point(3, 4)])

    server = serve(app)
    r = httpx.get(server.url + "/rich")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"p": {"x": 1, "y": 2}, "when": "2026-01-02T03:04:05",
                        "id": str(uid), "list": [1.5, None, True]}
    assert httpx.get(server.url + "/cork").json() == [{"x": 3, "y": 4}]
    with caplog.at_level(logging.ERROR, "corkweb.error"):
        r = httpx.get(server.url + "/bad")
    assert r.status_code == 500
    assert "Unknown" in caplog.text  # the unserialisable type is named in the log


def test_json_options_and_default_hook(serve) -> None:
    app = App(templates=None, json_option=orjson.OPT_SORT_KEYS,
              json_default=lambda o: f"<{type(o).__name__}>")
    app.get("/", lambda res, req: res.end({"b": 1, "a": Unknown()}))
    server = serve(app)
    assert httpx.get(server.url + "/").text == '{"a":"<Unknown>","b":1}'


def test_error_handlers_by_class_status_and_fallback(serve) -> None:
    app = App(templates=None)

    class QuotaExceeded(Exception):
        pass

    class SpecialQuota(QuotaExceeded):
        pass

    @app.on_error(QuotaExceeded)
    def quota(error, res, req):
        res.write_status(429).end(f"quota: {type(error).__name__}")

    @app.on_error(404)
    async def not_found(error, res, req):
        await asyncio.sleep(0)
        res.write_status(404).end({"missing": req.get_url()})

    @app.on_error
    def everything_else(error, res, req):
        res.write_status(500).end(f"custom 500: {error}")

    @app.get("/quota")
    def q(res, req):
        raise SpecialQuota()

    @app.get("/gone")
    def gone(res, req):
        raise NotFound("no such thing")

    @app.get("/other")
    async def other(res, req):
        raise ValueError("boom")

    server = serve(app)
    r = httpx.get(server.url + "/quota")
    assert r.status_code == 429 and r.text == "quota: SpecialQuota"
    assert httpx.get(server.url + "/gone").json() == {"missing": "/gone"}
    assert httpx.get(server.url + "/no-route").json() == {"missing": "/no-route"}
    assert httpx.get(server.url + "/other").text == "custom 500: boom"


def test_error_handler_that_fails_still_answers_500(serve, caplog) -> None:
    app = App(templates=None)

    @app.on_error
    def broken(error, res, req):
        raise RuntimeError("handler bug")

    @app.get("/")
    def home(res, req):
        raise ValueError("first")

    server = serve(app)
    assert httpx.get(server.url + "/").status_code == 500
    assert "handler bug" in caplog.text


def test_error_bodies_follow_accept_and_debug_shows_traceback(serve) -> None:
    app = App(templates=None)

    @app.get("/boom")
    def boom(res, req):
        raise ValueError("secret detail")

    @app.get("/teapot")
    def teapot(res, req):
        raise HTTPError(418, "I am a teapot")

    server = serve(app)
    r = httpx.get(server.url + "/teapot", headers={"accept": "application/json"})
    assert r.json() == {"status": 418, "error": "I'm a Teapot", "message": "I am a teapot"}
    r = httpx.get(server.url + "/teapot", headers={"accept": "text/html"})
    assert "<h1>418" in r.text
    r = httpx.get(server.url + "/boom", headers={"accept": "text/html"})
    assert r.status_code == 500 and "secret detail" not in r.text

    debug = App(templates=None, debug=True)
    debug.get("/boom", boom)
    server = serve(debug)
    r = httpx.get(server.url + "/boom", headers={"accept": "text/html"})
    assert r.status_code == 500 and "secret detail" in r.text and "Traceback" in r.text


def test_lifespan_hooks_run_once_sync_and_async(serve) -> None:
    app = App(templates=None)
    events = []

    @app.on_start
    def sync_start():
        events.append("start")

    @app.on_start
    async def async_start():
        await asyncio.sleep(0)
        events.append("astart")

    @app.on_shutdown
    async def stop():
        events.append("stop")

    app.get("/", lambda res, req: res.end(",".join(events)))
    server = serve(app)
    assert httpx.get(server.url + "/").text == "start,astart"
    server.__exit__(None, None, None)
    assert events == ["start", "astart", "stop"]


def test_the_app_freezes_when_it_starts(serve) -> None:
    app = App(templates=None)
    app.get("/", lambda res, req: res.end("x"))
    serve(app)
    with pytest.raises(AppFrozenError, match="already serving"):
        app.get("/late", lambda res, req: res.end("late"))
    with pytest.raises(AppFrozenError):
        app.use(lambda res, req, data: data)


def test_bad_patterns_fail_at_registration() -> None:
    app = App(templates=None)
    with pytest.raises(ValueError):
        app.get("/a/*/b", lambda res, req: None)
    with pytest.raises(ValueError):
        app.get("no-slash", lambda res, req: None)
    with pytest.raises(ValueError):
        app.route("BREW", "/coffee", lambda res, req: None)


def test_url_for_named_routes() -> None:
    app = App(templates=None)
    app.get("/users/:id<int>", lambda res, req: None, name="user")
    app.get("/search/:name", lambda res, req: None, name="search")
    assert app.url_for("user", id=5) == "/users/5"
    assert app.url_for("search", name="a b") == "/search/a%20b"
