"""Framework-level safety: redirect targets, JSON media types, upload file names, Host."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from corkweb import App, same_site_path
from corkweb.testing import TestClient

# -- redirects ------------------------------------------------------------------------------

SAME_SITE = ["/", "/account", "/a/b?next=/c#top", "/caf\u00e9", "/a%20b", "/search?q=%2F",
             "/%E2%9C%93", "/a//b", "/a/../b"]
OFF_SITE = [
    "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "\t//evil.example",
    " //evil.example", "/ /evil.example", "/\x00/evil.example", "/\x7f/evil.example",
    "/\x85/evil.example", "/\u200b/evil.example", "/\u2028/evil.example",
    "https://evil.example", "http:/evil.example", "javascript:alert(1)", "evil.example",
    "/%2F/evil.example", "/%2f/evil.example", "/%5Cevil.example", "/%09/evil.example",
    "/%0d%0aset-cookie:x=1", "/%252F/evil.example", "/%25252F%25252Fevil.example",
    "%2F%2Fevil.example", "", "/a\\b",
]


@pytest.mark.parametrize("target", SAME_SITE)
def test_same_site_paths_are_kept(target: str) -> None:
    assert same_site_path(target, "/home") == target


@pytest.mark.parametrize("target", OFF_SITE)
def test_off_site_and_ambiguous_targets_are_refused(target: str) -> None:
    assert same_site_path(target, "/home") == "/home"
    assert same_site_path(target) is None


def test_same_site_path_takes_none() -> None:
    assert same_site_path(None, "/") == "/"


def redirect_app() -> App:
    app = App(templates=None)

    @app.get("/go")
    def go(res, req):
        res.redirect(req.get_query("to") or "/", safe=True)

    @app.get("/login")
    def login(res, req):
        res.redirect(same_site_path(req.get_query("next"), "/"), 303)

    @app.get("/raw")
    def raw(res, req):
        res.redirect(req.get_query("to") or "/")

    return app


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "/\t/evil.example",
                                    "/%2F/evil.example", "https://evil.example"])
def test_safe_redirect_answers_400_and_sends_no_location(target: str) -> None:
    with TestClient(redirect_app()) as client:
        r = client.get("/go?to=" + quote(target, safe=""))
        assert r.status_code == 400
        assert "location" not in r.headers
        assert "refusing to redirect" in r.text
        r = client.get("/login?next=" + quote(target, safe=""))
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_safe_redirect_keeps_a_same_site_path() -> None:
    with TestClient(redirect_app()) as client:
        r = client.get("/go?to=" + quote("/account?tab=1", safe=""))
        assert r.status_code == 302 and r.headers["location"] == "/account?tab=1"
        r = client.get("/login?next=%2Fhome")
        assert r.status_code == 303 and r.headers["location"] == "/home"


@pytest.mark.parametrize("char", ["\t", "\x01", "\x1f", "\x7f", "\x85", "\x0b", "\x0c"])
def test_redirect_refuses_every_control_character(char: str) -> None:
    with TestClient(redirect_app()) as client:
        r = client.get("/raw?to=" + quote(f"/{char}/evil.example", safe=""))
        assert r.status_code == 500
        assert "location" not in r.headers
        # an absolute URL without controls is still the app's own business
        r = client.get("/raw?to=" + quote("https://example.org/x", safe=""))
        assert r.status_code == 302 and r.headers["location"] == "https://example.org/x"


# -- JSON needs a JSON media type -------------------------------------------------------------


def json_app() -> App:
    app = App(templates=None)

    @app.post("/items")
    async def items(res, req):
        res.end({"got": await res.get_json()})

    @app.post("/lenient")
    async def lenient(res, req):
        res.end({"got": await res.get_json(any_content_type=True)})

    return app


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/problem+json",
                                   "application/vnd.api+json; ext=x"])
def test_get_json_accepts_json_media_types(ctype: str) -> None:
    with TestClient(json_app()) as client:
        r = client.post("/items", content=b'{"a": 1}', headers={"content-type": ctype})
        assert r.status_code == 200 and r.json() == {"got": {"a": 1}}


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain; charset=utf-8",
                                   "application/x-www-form-urlencoded", "multipart/form-data",
                                   "application/jsonx", "json", "+json", None])
def test_get_json_refuses_other_media_types_with_415(ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    with TestClient(json_app()) as client:
        r = client.post("/items", content=b'{"a": 1}', headers=headers)
        assert r.status_code == 415, r.text
        assert "expected a JSON body" in r.text
        r = client.post("/lenient", content=b'{"a": 1}', headers=headers)
        assert r.status_code == 200 and r.json() == {"got": {"a": 1}}


def test_get_json_with_no_body_needs_no_content_type() -> None:
    with TestClient(json_app()) as client:
        r = client.post("/items")
        assert r.status_code == 200 and r.json() == {"got": None}


# -- upload file names ----------------------------------------------------------------------

NAMES = [
    ("report.pdf", "report.pdf"),
    ("../../app.py", "app.py"),
    ("/etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("C:\\Users\\ada\\photo.jpg", "photo.jpg"),
    ("C:photo.jpg", "C_photo.jpg"),
    ("..", "upload"),
    ("/", "upload"),
    ("....", "upload"),
    (".htaccess", "htaccess"),
    ("a\x00b\x1f\x7f.txt", "ab.txt"),
    ("evil\u202egpj.exe", "evilgpj.exe"),  # right-to-left override dropped
    ("trailing. . ", "trailing"),
    ("NUL.txt", "_NUL.txt"),
    ("com1", "_com1"),
    ("what?.txt", "what_.txt"),
    ("r\u00e9sum\u00e9.pdf", "r\u00e9sum\u00e9.pdf"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "safe"), NAMES)
def test_safe_filename(raw: str, safe: str) -> None:
    from corkweb.multipart import safe_filename

    assert safe_filename(raw) == safe


def test_safe_filename_keeps_the_extension_within_255_bytes() -> None:
    from corkweb.multipart import safe_filename

    name = safe_filename("\u00e9" * 300 + ".tar")
    assert name.endswith(".tar") and len(name.encode()) <= 255
    name.encode().decode()  # not cut inside a character


def upload_app() -> App:
    app = App(templates=None)

    @app.post("/form")
    async def form(res, req):
        with await res.get_form() as form:
            up = form["file"]
            res.end({"filename": up.filename, "raw": up.raw_filename, "data": up.read().decode()})

    @app.post("/parts")
    async def parts(res, req):
        from corkweb import MultipartReader

        out = []
        async for part in MultipartReader(res):
            out.append([part.filename, part.raw_filename, (await part.read()).decode()])
        res.end(out)

    return app


def test_upload_filename_is_a_safe_base_name_and_the_raw_one_is_kept() -> None:
    files = {"file": ("../../app.py", b"print('pwned')", "text/x-python")}
    with TestClient(upload_app()) as client:
        r = client.post("/form", files=files)
        assert r.json() == {"filename": "app.py", "raw": "../../app.py", "data": "print('pwned')"}
        r = client.post("/parts", files=files, data={"field": "v"})
        assert r.json() == [[None, None, "v"], ["app.py", "../../app.py", "print('pwned')"]]


# -- Host ------------------------------------------------------------------------------------


def host_app(**kwargs: object) -> App:
    app = App(templates=None, **kwargs)  # type: ignore[arg-type]

    @app.get("/users/:id", name="user")
    def user(res, req):
        res.end(app.url_for("user", _external=True, id=req.get_parameter("id")))

    app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})
    return app


def raw_status(port: int, request: bytes) -> bytes:
    from conftest import raw_exchange

    return raw_exchange(port, request, expect=1).split(b"\r\n", 1)[0]


@pytest.mark.parametrize(("host", "ok"), [
    ("example.com", True), ("EXAMPLE.com:8080", True), ("example.com.", True),
    ("api.example.com", True), ("a.b.example.com", True), ("evil.example", False),
    ("example.com.evil.example", False), ("evilexample.com", False), ("[::1]:80", False),
    ("localhost", False),
])
def test_trusted_hosts_answer_400_to_other_hosts(host: str, ok: bool) -> None:
    app = host_app(trusted_hosts=["example.com", "*.example.com"], server_name="example.com")
    with TestClient(app) as client:
        line = raw_status(client.port, f"GET /users/7 HTTP/1.1\r\nHost: {host}\r\n"
                          "Connection: close\r\n\r\n".encode())
        assert line == (b"HTTP/1.1 200 OK" if ok else b"HTTP/1.1 400 Bad Request"), host


def test_trusted_hosts_require_a_host_and_guard_websockets() -> None:
    app = host_app(trusted_hosts="example.com")
    with TestClient(app) as client:
        no_host = b"GET /users/7 HTTP/1.0\r\n\r\n"
        assert raw_status(client.port, no_host) == b"HTTP/1.1 400 Bad Request"
        upgrade = (b"GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert raw_status(client.port, upgrade % b"evil.example") == b"HTTP/1.1 400 Bad Request"
        from conftest import raw_exchange

        ok = raw_exchange(client.port, upgrade % b"example.com", until_close=False, timeout=1)
        assert ok.startswith(b"HTTP/1.1 101"), ok


def test_absolute_url_for_uses_server_name_never_the_host_header() -> None:
    with TestClient(host_app(server_name="https://Example.com:8443")) as client:
        r = client.get("/users/a b", headers={"host": "evil.example"})
        assert r.text == "https://example.com:8443/users/a%20b"
    app = host_app()
    assert app.url_for("user", id=1) == "/users/1"
    with pytest.raises(RuntimeError, match="server_name"):
        app.url_for("user", _external=True, id=1)
    assert host_app(server_name="example.com").url_for("user", _external=True, id=1) == (
        "https://example.com/users/1")


def test_host_settings_from_the_environment_and_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("CORKWEB_TRUSTED_HOSTS", "example.com, *.example.org")
    monkeypatch.setenv("CORKWEB_SERVER_NAME", "http://example.com")
    app = App(templates=None)
    assert app.trusted_hosts is not None and app.trusted_hosts.allows("x.example.org")
    assert not app.trusted_hosts.allows("example.net")
    assert app.server_origin == "http://example.com"
    for bad in ("https://example.com", "ex*ample.com"):
        with pytest.raises(ValueError, match="trusted_hosts"):
            App(templates=None, trusted_hosts=[bad])
    with pytest.raises(ValueError, match="trusted_hosts is empty"):
        App(templates=None, trusted_hosts=[])
    for bad in ("ftp://example.com", "https://example.com/app", "https://u@example.com"):
        with pytest.raises(ValueError, match="server_name"):
            App(templates=None, server_name=bad)
