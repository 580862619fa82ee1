"""``corkweb run --interface asgi|auto``: real subprocesses serving real framework apps."""

from __future__ import annotations

import httpx
import pytest
from cli_process import CLIProcess

from corkweb.asgi import HostedApp, detect_interface


@pytest.mark.parametrize("interface", ["asgi", "auto"])
def test_run_serves_a_starlette_app(interface: str) -> None:
    with CLIProcess("run", "--interface", interface, "--port", "0",
                    "hosted.starlette_app:app") as cli:
        cli.ready()
        assert httpx.get(cli.url + "/plaintext").text == "Hello, World!"
        assert httpx.get(cli.url + "/info").json()["greeting"] == "hello from lifespan"
        assert cli.stop() == 0


@pytest.mark.parametrize(("target", "needle"), [
    ("hosted.broken_lifespan:app", "no database"),
    ("hosted.broken_lifespan:raising", "database at 127.0.0.1:1 refused"),
])
def test_failed_lifespan_startup_exits_non_zero(target: str, needle: str) -> None:
    with CLIProcess("run", "--interface", "asgi", "--port", "0", target) as cli:
        code = cli.proc.wait(30)
        cli.wait_for("start-up failed")
        assert code == 3 and needle in cli.output
        assert "listening" not in cli.output


def test_interface_detection() -> None:
    from apps.hosted import starlette_app

    async def raw(scope, receive, send):  # type: ignore[no-untyped-def]
        pass

    def wsgi(environ, start_response):  # type: ignore[no-untyped-def]
        return []

    assert detect_interface(starlette_app.app) == "asgi"
    assert detect_interface(raw) == "asgi"
    assert detect_interface(wsgi) == "wsgi"
    assert detect_interface(HostedApp(raw)) == "corkweb"
    with pytest.raises(ValueError, match="--interface asgi or --interface wsgi"):
        detect_interface(lambda a, b, c: None)
    with pytest.raises(ValueError, match="not callable"):
        detect_interface(42)
