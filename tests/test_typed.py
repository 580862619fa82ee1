"""Typed handlers on a real socket: every input source and conversion, constraints, the 422
problem document and its locations, 400 for malformed JSON, and each kind of returned value."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import socket
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pydantic
import pytest

from corkweb import App, Body, Cookie, Depends, Header, Query, Request, Response
from corkweb.testing import TestClient


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class ItemIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []
    stock: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None


class ItemOut(msgspec.Struct):
    id: int
    name: str
    price: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Pet(TypedDict):
    name: str
    legs: int


class User(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0)


class UserOut(pydantic.BaseModel):
    name: str


class Tag(msgspec.Struct):
    label: str


def make_app() -> App:
    app = App(templates=None)

    @app.get("/path/:i/:f/:s/:b/:u/:c/:l/:d/:t")
    def path(i: int, f: float, s: str, b: bool, u: uuid.UUID, c: Color,
             l: Literal["x", "y"], d: datetime.date, t: datetime.datetime) -> dict:  # noqa: E741
        return {"i": i, "f": f, "s": s, "b": b, "u": str(u), "c": c.value, "l": l,
                "d": d.isoformat(), "t": t.isoformat(), "types": [type(v).__name__ for v in (
                    i, f, s, b, u, c, l, d, t)]}

    @app.get("/query")
    def query(limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10,
              q: str | None = None,
              ids: list[int] = [],  # noqa: B006
              flag: bool = False,
              max_items: Annotated[int, Query(alias="max-items")] = 3,
              code: Annotated[str, msgspec.Meta(pattern="^[a-z]+$")] = "abc") -> dict:
        return {"limit": limit, "q": q, "ids": ids, "flag": flag, "max": max_items,
                "code": code}

    @app.get("/required")
    def required(needed: int) -> dict:
        return {"needed": needed}

    @app.get("/headers")
    def headers(x_token: Annotated[str, Header()],
                user_agent: Annotated[str | None, Header()] = None,
                x_num: Annotated[int, Header(alias="X-Number")] = 0,
                session: Annotated[str | None, Cookie()] = None,
                visits: Annotated[int, Cookie(), msgspec.Meta(ge=0)] = 0) -> dict:
        return {"token": x_token, "ua": user_agent, "num": x_num, "session": session,
                "visits": visits}

    @app.post("/items", status=201)
    async def create(item: ItemIn) -> ItemOut:
        return ItemOut(id=1, name=item.name, price=item.price)

    @app.post("/sync-items", status=201)
    def create_sync(item: ItemIn) -> ItemOut:
        return ItemOut(id=2, name=item.name, price=item.price)

    @app.post("/optional")
    def optional(item: ItemIn | None = None) -> dict:
        return {"item": None if item is None else item.name}

    @app.post("/point")
    def point(p: Point) -> Point:
        return Point(p.y, p.x)

    @app.post("/pets")
    def pets(pets: list[Pet]) -> dict:
        return {"legs": sum(p["legs"] for p in pets)}

    @app.post("/mapping")
    def mapping(scores: dict[str, int]) -> dict:
        return {"total": sum(scores.values())}

    @app.post("/users")
    def users(user: User) -> UserOut:
        return user  # converted to UserOut: only its fields

    @app.post("/embedded")
    def embedded(item: ItemIn, tag: Tag, note: Annotated[str, Body()] = "") -> dict:
        return {"item": item.name, "tag": tag.label, "note": note}

    @app.get("/typed-segments/:n<int>/:u<uuid>")
    def typed_segments(n: str, u: uuid.UUID) -> dict:
        return {"n": n, "u": str(u)}

    @app.post("/anything")
    def anything(payload: dict[str, Any]) -> dict:
        return {"keys": sorted(payload)}

    @app.post("/scalar-body")
    def scalar_body(count: Annotated[int, Body()]) -> dict:
        return {"count": count}

    @app.get("/objects")
    def objects(res: Response, req: Request, request: Any, n: int = 1) -> dict:
        return {"res": type(res).__name__, "req": type(req).__name__,
                "request": type(request).__name__, "n": n}

    @app.get("/streams")
    def streams(res: Response, n: int = 2) -> None:
        res.write_header("x-n", str(n)).end("streamed")

    @app.get("/later")
    async def later(res: Response) -> None:
        res.set_cookie("c", "1").end("by hand")

    # -- return kinds --------------------------------------------------------------------
    @app.get("/r/text")
    def r_text() -> str:
        return "hello"

    @app.get("/r/bytes")
    def r_bytes() -> bytes:
        return b"\x00\x01"

    @app.get("/r/list")
    def r_list() -> list[int]:
        return [1, 2]

    @app.get("/r/none", status=204)
    def r_none() -> None:
        return None

    @app.get("/r/dataclass")
    def r_dataclass():  # no annotation: the value decides
        return Point(1, 2)

    @app.get("/r/struct-from-dict")
    def r_struct_from_dict() -> ItemOut:
        return {"id": 7, "name": "n", "price": 1.5, "secret": "dropped"}  # type: ignore[return-value]

    @app.get("/r/struct-unannotated")
    def r_struct_unannotated():
        return [ItemOut(id=1, name="a", price=2.0)]

    @app.get("/r/model-unannotated")
    def r_model():
        return UserOut(name="m")

    @app.get("/r/bad-return")
    def r_bad_return() -> ItemOut:
        return {"id": "not an int"}  # type: ignore[return-value]

    # -- classic handlers returning values -------------------------------------------------
    @app.get("/c/dict")
    def c_dict(res, req):
        return {"classic": True}

    @app.post("/c/created", status=201)
    async def c_created(res, req):
        return {"got": await res.get_json()}

    @app.get("/c/text")
    def c_text(res, req):
        return "plain"

    @app.get("/c/nothing")
    def c_nothing(res, req):
        return None

    @app.get("/c/responds")
    def c_responds(res, req):
        return res.end("itself")

    @app.get("/c/streams")
    def c_streams(res, req):
        res.write("part one, ")
        res.end("part two")
        return True  # a value returned after answering changes nothing

    @app.get("/c/streaming")
    def c_streaming(res, req):
        res.write("started, ")
        asyncio.get_running_loop().call_soon(res.cork_end, "ended later")
        return ("a", "tuple")  # streaming already: not appended to the answer

    return app


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app()) as client:
        yield client


def problem(response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422 and body["title"] and body["type"] == "about:blank"
    assert body["detail"]
    return body["errors"]


def locs(response) -> list[list[Any]]:
    return [error["loc"] for error in problem(response)]


# -- sources and conversions -------------------------------------------------------------


def test_path_parameters_convert_to_each_type(client) -> None:
    u = uuid.uuid4()
    r = client.get(f"/path/42/2.5/hi%20there/true/{u}/blue/y/2024-02-29/2024-02-29T10:11:12Z")
    assert r.status_code == 200, r.text
    assert r.json() == {"i": 42, "f": 2.5, "s": "hi there", "b": True, "u": str(u),
                        "c": "blue", "l": "y", "d": "2024-02-29",
                        "t": "2024-02-29T10:11:12+00:00",
                        "types": ["int", "float", "str", "bool", "UUID", "Color", "str",
                                  "date", "datetime"]}


def test_every_bad_path_parameter_is_reported(client) -> None:
    r = client.get("/path/x/y/s/maybe/not-a-uuid/green/z/2024-13-01/never")
    errors = problem(r)
    assert [e["loc"] for e in errors] == [["path", name] for name in "ifbucldt"]
    assert errors[0]["input"] == "x" and "int" in errors[0]["msg"]


def test_route_converters_and_annotations_agree(client) -> None:
    u = uuid.uuid4()
    assert client.get(f"/typed-segments/7/{u}").json() == {"n": "7", "u": str(u)}


def test_hostile_bodies_and_numbers_are_4xx(client) -> None:
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = client.post("/anything", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.text
    assert locs(client.get("/query?limit=" + "9" * 5000)) == [["query", "limit"]]
    assert locs(client.get("/path/1/1e400/s/true/" + str(uuid.uuid4()) +
                           "/red/x/2024-01-01/2024-01-01T00:00:00")) == [["path", "f"]]


def test_query_parameters_defaults_lists_aliases(client) -> None:
    assert client.get("/query").json() == {"limit": 10, "q": None, "ids": [], "flag": False,
                                           "max": 3, "code": "abc"}
    r = client.get("/query?limit=5&q=x&ids=1&ids=2&flag=true&max-items=9&code=xyz")
    assert r.json() == {"limit": 5, "q": "x", "ids": [1, 2], "flag": True, "max": 9,
                        "code": "xyz"}
    assert client.get("/query?flag=0").json()["flag"] is False


def test_query_constraints_and_types(client) -> None:
    assert locs(client.get("/query?limit=0")) == [["query", "limit"]]
    assert locs(client.get("/query?limit=101")) == [["query", "limit"]]
    assert locs(client.get("/query?ids=1&ids=x")) == [["query", "ids", 1]]
    assert locs(client.get("/query?code=ABC")) == [["query", "code"]]
    assert locs(client.get("/query?max-items=many")) == [["query", "max-items"]]
    errors = problem(client.get("/query?limit=0&flag=perhaps&code=1"))
    assert [e["loc"] for e in errors] == [["query", "limit"], ["query", "flag"],
                                          ["query", "code"]]
    assert ">= 1" in errors[0]["msg"] and "regex" in errors[2]["msg"]


def test_missing_required_query_parameter(client) -> None:
    errors = problem(client.get("/required"))
    assert errors == [{"loc": ["query", "needed"], "msg": "Field required", "type": "missing"}]
    assert client.get("/required?needed=3").json() == {"needed": 3}


def test_headers_and_cookies(client) -> None:
    r = client.get("/headers", headers={"x-token": "t0k", "user-agent": "ua/1",
                                        "x-number": "5", "cookie": "session=abc; visits=3"})
    assert r.json() == {"token": "t0k", "ua": "ua/1", "num": 5, "session": "abc", "visits": 3}
    errors = problem(client.get("/headers", headers={"cookie": "visits=-1"}))
    assert [e["loc"] for e in errors] == [["header", "x-token"], ["cookie", "visits"]]
    assert locs(client.get("/headers")) == [["header", "x-token"]]
    assert locs(client.get("/headers", headers={"x-token": "t", "x-number": "five"})) == [
        ["header", "x-number"]]


def test_json_body_struct_and_constraints(client) -> None:
    r = client.post("/items", json={"name": "widget", "price": 9.5, "tags": ["a"]})
    assert r.status_code == 201 and r.json() == {"id": 1, "name": "widget", "price": 9.5}
    assert r.headers["content-type"] == "application/json"
    cases = [
        ({"name": "w", "price": 0}, ["body", "price"]),
        ({"name": "", "price": 1}, ["body", "name"]),
        ({"name": "x" * 21, "price": 1}, ["body", "name"]),
        ({"name": "w", "price": 1, "tags": ["a", 2]}, ["body", "tags", 1]),
        ({"name": "w", "price": 1, "stock": 1001}, ["body", "stock"]),
        ({"name": "w", "price": 1, "stock": -1}, ["body", "stock"]),
        ({"name": "w"}, ["body", "price"]),
        ([1, 2], ["body"]),
    ]
    for payload, loc in cases:
        assert locs(client.post("/items", json=payload)) == [loc], payload


def test_sync_handler_with_a_body_now_or_later(client) -> None:
    r = client.post("/sync-items", json={"name": "now", "price": 1})
    assert r.status_code == 201 and r.json() == {"id": 2, "name": "now", "price": 1.0}
    # Expect: 100-continue holds the body back until the handler asks for it: the handler
    # then waits for a body that has not arrived yet.
    body = b'{"name": "later", "price": 2}'
    with socket.create_connection(("127.0.0.1", client.port), timeout=5) as sock:
        sock.sendall(b"POST /sync-items HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                     b"content-type: application/json\r\ncontent-length: %d\r\n\r\n"
                     % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        answer = sock.recv(1000)
    assert answer.startswith(b"HTTP/1.1 201 ") and answer.endswith(
        b'{"id":2,"name":"later","price":2.0}')
    errors = problem(client.post("/sync-items", json={"name": "x", "price": -2}))
    assert [e["loc"] for e in errors] == [["body", "price"]]


def test_missing_body_is_422_and_malformed_json_is_400(client) -> None:
    errors = problem(client.post("/items"))
    assert errors == [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
    r = client.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.text
    r = client.post("/items", content=b'{"name": "w", "price": 1}',
                    headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.text
    assert client.post("/optional").json() == {"item": None}
    assert client.post("/optional", json={"name": "o", "price": 1}).json() == {"item": "o"}


def test_other_structured_bodies(client) -> None:
    assert client.post("/point", json={"x": 1, "y": 2}).json() == {"x": 2, "y": 1}
    assert locs(client.post("/point", json={"x": "1"})) == [["body", "x"]]
    assert client.post("/pets", json=[{"name": "a", "legs": 4}, {"name": "b", "legs": 2}]
                       ).json() == {"legs": 6}
    assert locs(client.post("/pets", json=[{"name": "a", "legs": 4}, {"name": "b"}])) == [
        ["body", 1, "legs"]]
    assert client.post("/mapping", json={"a": 1, "b": 2}).json() == {"total": 3}
    assert locs(client.post("/mapping", json={"a": "x"})) == [["body", "*"]]


def test_pydantic_body_and_answer(client) -> None:
    assert client.post("/users", json={"name": "ann", "age": 3}).json() == {"name": "ann"}
    errors = problem(client.post("/users", json={"name": 1, "age": -1}))
    assert [e["loc"] for e in errors] == [["body", "name"], ["body", "age"]]
    assert client.post("/users", content=b"{nope",
                       headers={"content-type": "application/json"}).status_code == 400


def test_embedded_and_scalar_bodies(client) -> None:
    r = client.post("/embedded", json={"item": {"name": "i", "price": 1}, "tag": {"label": "t"}})
    assert r.json() == {"item": "i", "tag": "t", "note": ""}
    assert locs(client.post("/embedded", json={"item": {"name": "i", "price": 1}})) == [
        ["body", "tag"]]
    assert client.post("/scalar-body", json=3).json() == {"count": 3}  # the whole body


def test_response_and_request_are_injected(client) -> None:
    assert client.get("/objects?n=4").json() == {"res": "Response", "req": "Request",
                                                 "request": "Request", "n": 4}
    r = client.get("/streams")
    assert r.text == "streamed" and r.headers["x-n"] == "2"
    r = client.get("/later")
    assert r.text == "by hand" and r.cookies["c"] == "1"


# -- returned values ----------------------------------------------------------------------


def test_returned_values(client) -> None:
    r = client.get("/r/text")
    assert r.text == "hello" and r.headers["content-type"].startswith("text/plain")
    r = client.get("/r/bytes")
    assert r.content == b"\x00\x01"
    assert r.headers["content-type"] == "application/octet-stream"
    assert client.get("/r/list").json() == [1, 2]
    r = client.get("/r/none")
    assert r.status_code == 204 and r.content == b""
    assert client.get("/r/dataclass").json() == {"x": 1, "y": 2}
    assert client.get("/r/struct-from-dict").json() == {"id": 7, "name": "n", "price": 1.5}
    assert client.get("/r/struct-unannotated").json() == [{"id": 1, "name": "a", "price": 2.0}]
    assert client.get("/r/model-unannotated").json() == {"name": "m"}


def test_a_wrong_return_value_is_a_server_error(client, caplog) -> None:
    r = client.get("/r/bad-return")
    assert r.status_code == 500
    assert any("r_bad_return" in rec.getMessage() or rec.exc_info for rec in caplog.records)


def test_classic_handlers_may_return_values(client) -> None:
    r = client.get("/c/dict")
    assert r.status_code == 200 and r.json() == {"classic": True}
    r = client.post("/c/created", json=[1])
    assert r.status_code == 201 and r.json() == {"got": [1]}
    assert client.get("/c/text").text == "plain"
    assert client.get("/c/nothing").status_code == 500  # still: it did not respond
    assert client.get("/c/responds").text == "itself"
    assert client.get("/c/streams").text == "part one, part two"
    assert client.get("/c/streaming").text == "started, ended later"


# -- declaration errors at freeze ---------------------------------------------------------


def test_declaration_errors_name_the_handler() -> None:
    app = App(templates=None)

    @app.get("/bad")
    def bad(item: ItemIn, **rest: int) -> None:
        return None

    with pytest.raises(TypeError, match=r"handler .*bad .*GET /bad.*\*rest"):
        app.freeze()


def test_unresolvable_annotation_is_explained() -> None:
    app = App(templates=None)

    class Local(msgspec.Struct):  # local to the test: not importable from the module
        x: int

    @app.post("/local")
    def local(item: Local) -> None:
        return None

    with pytest.raises(TypeError, match="cannot resolve its annotations.*'Local'.*module"):
        app.freeze()


def test_unknown_route_option_is_refused() -> None:
    app = App(templates=None)
    with pytest.raises(TypeError, match="unknown option.*stauts"):
        app.get("/x", stauts=201)
    with pytest.raises(ValueError, match="status must be"):
        app.get("/x", status=1000)


def test_classic_detection() -> None:
    from corkweb.typed.plan import is_classic

    assert is_classic(lambda res, req: None)
    assert is_classic(lambda response, request, data: None)

    def annotated(res: Response, req: Request) -> None: ...

    def typed_one(item_id: int) -> None: ...

    def no_args() -> None: ...

    def named_after_path(item_id, other): ...

    assert is_classic(annotated)
    assert not is_classic(typed_one)
    assert not is_classic(no_args)
    assert is_classic(named_after_path)
    assert not is_classic(named_after_path, ("item_id",))


class Pager:
    """A class as a dependency provider: its __init__ parameters are planned."""

    def __init__(self, page: Annotated[int, msgspec.Meta(ge=1)] = 1,
                 size: Annotated[int, msgspec.Meta(multiple_of=10, lt=100)] = 10) -> None:
        self.page = page
        self.size = size


def test_middleware_route_dependencies_and_class_providers() -> None:
    app = App(templates=None)
    seen: list[str] = []

    @app.use
    def tag(res, req, data):
        res.write_header("x-mw", "1")
        return {"user": "mw"}

    def audit(req: Request) -> None:
        seen.append(req.path)

    @app.get("/paged", dependencies=[Depends(audit)])
    async def paged(pager: Annotated[Pager, Depends(Pager)]) -> dict:
        return {"page": pager.page, "size": pager.size}

    with TestClient(app) as client:
        r = client.get("/paged?page=2&size=20")
        assert r.json() == {"page": 2, "size": 20} and r.headers["x-mw"] == "1"
        assert seen == ["/paged"]
        errors = problem(client.get("/paged?page=0&size=15"))
        assert [e["loc"] for e in errors] == [["query", "page"], ["query", "size"]]
        assert "multiple of 10" in errors[1]["msg"]
        assert locs(client.get("/paged?size=100")) == [["query", "size"]]
        assert seen == ["/paged"]  # the audit did not run for the rejected requests
