"""Dependencies on a real socket: sync, async, generator and async generator providers, their
order, one call per request, nesting, typed inputs of providers, group dependencies, and the
clean-up after the answer (after success, after a handler error, after a client disconnect)."""

from __future__ import annotations

import socket
import threading
from typing import Annotated, Any

import pytest

from corkweb import App, Depends, Header, HTTPError, Response
from corkweb.testing import TestClient

WAIT = 5.0


class Journal:
    """What the providers did, and a signal for each clean-up that ran."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.cleaned = threading.Semaphore(0)
        self.reading = threading.Event()

    def clean(self, what: Any) -> None:
        self.events.append(what)
        self.cleaned.release()

    def wait_cleanups(self, count: int) -> None:
        for _ in range(count):
            assert self.cleaned.acquire(timeout=WAIT), f"clean-up missing; saw {self.events}"


journal = Journal()


def settings() -> dict[str, str]:
    journal.events.append("settings")
    return {"db": "memory"}


async def connection(cfg: Annotated[dict, Depends(settings)]):
    journal.events.append("connect")
    conn = {"cfg": cfg, "open": True}
    try:
        yield conn
    except Exception as exc:  # the handler's error is thrown in at the yield
        journal.events.append(f"saw {type(exc).__name__}")
        raise
    finally:
        conn["open"] = False
        journal.clean("disconnect")


def transaction(conn: Annotated[dict, Depends(connection)], res: Response):
    journal.events.append("begin")
    try:
        yield {"conn": conn}
    except Exception:
        journal.clean(("rollback", res.has_responded()))
        raise
    # After the answer: the response has been written.
    journal.clean(("commit", res.has_responded()))


async def current_user(x_user: Annotated[str, Header()],
                       cfg: Annotated[dict, Depends(settings)]) -> str:
    journal.events.append("user")
    return x_user.upper()


def counter() -> int:
    journal.events.append("count")
    return len(journal.events)


def require_token(x_token: Annotated[str | None, Header()] = None) -> None:
    if x_token != "secret":
        raise HTTPError(401, "missing or wrong x-token")
    journal.events.append("token ok")


def make_app() -> App:
    app = App(templates=None)

    @app.post("/orders", status=201)
    async def order(tx: Annotated[dict, Depends(transaction)],
                    user: Annotated[str, Depends(current_user)],
                    again: Annotated[dict, Depends(connection)]) -> dict:
        journal.events.append("handler")
        return {"user": user, "same": again is tx["conn"], "open": again["open"],
                "db": again["cfg"]["db"]}

    @app.get("/fails")
    async def fails(tx: Annotated[dict, Depends(transaction)]) -> dict:
        journal.events.append("handler")
        raise ValueError("boom")

    @app.post("/slow-body")
    async def slow_body(res: Response, tx: Annotated[dict, Depends(transaction)]) -> None:
        journal.reading.set()
        await res.get_data()  # the client goes away before the body is complete
        res.end("never")

    @app.get("/uncached")
    def uncached(a: Annotated[int, Depends(counter, use_cache=False)],
                 b: Annotated[int, Depends(counter, use_cache=False)],
                 c: int = Depends(counter)) -> dict:
        return {"distinct": a != b, "c": c}

    @app.get("/sync-gen")
    def sync_gen(cfg=Depends(settings), tx=Depends(transaction)) -> str:
        return "ok"

    admin = app.router("/admin", dependencies=[Depends(require_token)])

    @admin.get("/stats")
    def stats() -> dict:
        return {"stats": 1}

    @admin.get("/classic")
    def classic(res, req):
        res.end("classic behind a dependency")

    return app


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app()) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_journal():
    journal.events.clear()
    while journal.cleaned.acquire(blocking=False):
        pass
    yield


def test_order_once_per_request_nesting_and_cleanup_after_the_answer(client) -> None:
    r = client.post("/orders", headers={"x-user": "ann"})
    assert r.status_code == 201, r.text
    assert r.json() == {"user": "ANN", "same": True, "open": True, "db": "memory"}
    journal.wait_cleanups(2)
    # settings once although three providers use it; connection once although used twice;
    # clean-ups in reverse order, after the response was written.
    assert journal.events == ["settings", "connect", "begin", "user", "handler",
                              ("commit", True), "disconnect"]


def test_provider_inputs_are_validated_with_the_handler_inputs(client) -> None:
    r = client.post("/orders")
    assert r.status_code == 422
    assert r.json()["errors"] == [{"loc": ["header", "x-user"], "msg": "Field required",
                                   "type": "missing"}]
    assert journal.events == []  # nothing ran: the inputs are checked first


def test_cleanup_after_a_handler_error_sees_the_error(client) -> None:
    r = client.get("/fails")
    assert r.status_code == 500
    journal.wait_cleanups(2)
    assert journal.events == ["settings", "connect", "begin", "handler", ("rollback", True),
                              "saw ValueError", "disconnect"]


def test_cleanup_after_the_client_went_away(client) -> None:
    with socket.create_connection(("127.0.0.1", client.port), timeout=WAIT) as sock:
        sock.sendall(b"POST /slow-body HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123")
        assert journal.reading.wait(WAIT)  # the handler now waits for the rest of the body
    journal.wait_cleanups(2)
    assert journal.events == ["settings", "connect", "begin", ("rollback", True),
                              "saw ClientDisconnected", "disconnect"]


def test_use_cache_false_calls_each_time(client) -> None:
    assert client.get("/uncached").json() == {"distinct": True, "c": 3}
    assert journal.events == ["count", "count", "count"]


def test_sync_generator_cleanup(client) -> None:
    assert client.get("/sync-gen").text == "ok"
    journal.wait_cleanups(2)
    assert journal.events[-2:] == [("commit", True), "disconnect"]


def test_group_dependencies_guard_every_route(client) -> None:
    r = client.get("/admin/stats")
    assert r.status_code == 401 and "x-token" in r.text
    r = client.get("/admin/stats", headers={"x-token": "secret"})
    assert r.json() == {"stats": 1} and journal.events == ["token ok"]
    assert client.get("/admin/classic").status_code == 401
    r = client.get("/admin/classic", headers={"x-token": "secret"})
    assert r.text == "classic behind a dependency"


def test_dependency_cycle_is_refused_at_freeze() -> None:
    app = App(templates=None)

    @app.get("/cycle")
    def cycle(value: Annotated[int, Depends(egg)]) -> int:
        return value

    with pytest.raises(TypeError, match="dependency cycle: .*egg.*chicken.*egg"):
        app.freeze()


def chicken(value: Annotated[int, Depends(lambda: 0)], egg: Annotated[int, Depends(lambda: 0)]
            ) -> int:
    return value


def egg(hen: Annotated[int, Depends(chicken)]) -> int:
    return hen


# Made circular after both exist: chicken's second dependency is egg itself.
chicken.__annotations__["egg"] = Annotated[int, Depends(egg)]
