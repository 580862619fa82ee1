"""A newcomer's first hour: what goes wrong is said in one line that names the culprit.

The command is run as a real subprocess (``tests/cli_process.py``), apps are served on real
sockets, WebSocket clients are the ``websockets`` package.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from cli_process import CLIProcess, cli_env, run_cli
from websockets.exceptions import ConnectionClosed

from corkweb import App
from corkweb.testing import TestServer

# -- WebSocket callbacks that raise -------------------------------------------------------


def _raise(*_: Any) -> None:
    raise RuntimeError("bug in a callback")


async def _araise(*_: Any) -> None:
    await asyncio.sleep(0)
    raise RuntimeError("bug in an async callback")


@pytest.mark.parametrize("behavior", [
    pytest.param({"message": _raise}, id="message"),
    pytest.param({"message": _araise}, id="async-message"),
    pytest.param({"open": _raise}, id="open"),
])
def test_websocket_callback_exception_closes_with_1011(
        behavior: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    app = App(templates=None)
    app.ws("/ws", behavior)

    async def talk(port: int) -> Any:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as client:
            try:
                await client.send("hi")
            except ConnectionClosed:
                pass  # an open handler that raised closed the socket before this send
            await asyncio.wait_for(client.wait_closed(), 5)
            return client.protocol.close_rcvd

    with TestServer(app) as server:
        received = asyncio.run(talk(server.port))
    assert received is not None and received.code == 1011
    assert received.reason == "internal server error"
    assert "bug in" in caplog.text  # the details stay in the server's log


# -- corkweb run: finding and importing the app -----------------------------------------------

HELLO = '''\
from corkweb import App

app = App(templates=None)


@app.get("/")
def home(res, req):
    res.end("hello from a file")
'''


def _project(tmp_path: Path) -> Path:
    """``site/app.py`` and ``site/pkg/views.py`` (relative imports), and an empty ``here/``."""
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "app.py").write_text(HELLO)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "helper.py").write_text('TEXT = "hello from a package"\n')
    (site / "pkg" / "views.py").write_text(HELLO.replace(
        '"hello from a file"', "helper.TEXT").replace(
        "from corkweb import App\n", "from corkweb import App\n\nfrom . import helper\n"))
    (tmp_path / "here").mkdir()
    return site


@pytest.mark.parametrize(("path", "text"), [
    pytest.param("../site/app.py", "hello from a file", id="relative"),
    pytest.param("{site}/app.py:app", "hello from a file", id="absolute"),
    pytest.param("../site/pkg/views.py", "hello from a package", id="in-a-package"),
])
def test_run_takes_a_py_path_anywhere(tmp_path: Path, path: str, text: str) -> None:
    import httpx

    site = _project(tmp_path)
    with CLIProcess("run", path.format(site=site), "--port", "0", cwd=tmp_path / "here") as cli:
        cli.ready()
        assert httpx.get(cli.url + "/", timeout=5).text == text
        assert cli.stop() == 0, cli.output


def test_run_refuses_a_module_that_calls_app_run_at_import(tmp_path: Path) -> None:
    (tmp_path / "eager.py").write_text(HELLO + "\napp.run(port=0)\n")
    done = run_cli("run", "eager:app", "--port", "0", cwd=tmp_path, timeout=20)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("corkweb: error: eager.py:10 calls app.run()")
    assert 'if __name__ == "__main__":' in lines[0]
    assert "listening" not in done.stdout + done.stderr  # no server was started


def test_run_on_a_factory_module_hints_the_factory_flag(tmp_path: Path) -> None:
    (tmp_path / "factory_only.py").write_text(
        "from corkweb import App\n\n\ndef create_app():\n    return App(templates=None)\n")
    done = run_cli("run", "factory_only", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "corkweb: error: module 'factory_only' has no App instance; it has a factory: "
        "corkweb run factory_only:create_app --factory")


def test_an_import_error_in_the_app_shows_the_apps_frames(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "from corkweb import App\n\napp = App(templates=None)\n\n\ndef setup():\n"
        "    raise RuntimeError('the database URL is missing')\n\n\nsetup()\n")
    done = run_cli("run", "broken", cwd=tmp_path)
    assert done.returncode == 1
    err = done.stderr
    assert err.startswith("Traceback (most recent call last):\n  File \"")
    frames = [line for line in err.splitlines() if line.startswith('  File "')]
    assert frames and all("broken.py" in line for line in frames), err
    assert "corkweb" not in "".join(frames) and "importlib" not in err
    assert err.rstrip().endswith(
        "corkweb: error: importing 'broken' failed: RuntimeError: the database URL is missing")


# -- corkweb new ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "why", "suggestion"), [
    ("123app", "not a Python identifier", "my-123app"),
    ("class", "a Python keyword", "class-app"),
    ("json", "standard-library module", "json-app"),
    ("corkweb", "the name of corkweb", "corkweb-app"),
])
def test_new_refuses_names_that_cannot_be_imported(tmp_path: Path, name: str, why: str,
                                                   suggestion: str) -> None:
    done = run_cli("new", name, "-o", str(tmp_path))
    assert done.returncode == 1
    assert why in done.stderr and f"try: corkweb new {suggestion}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing written
    ok = run_cli("new", suggestion, "-o", str(tmp_path), "--renderer", "builtin")
    assert ok.returncode == 0, ok.stderr  # and the suggestion works


@pytest.mark.parametrize("renderer", ["builtin", "cookiecutter"])
def test_new_into_an_existing_folder_is_one_line(tmp_path: Path, renderer: str) -> None:
    if renderer == "cookiecutter":
        pytest.importorskip("cookiecutter")
    (tmp_path / "pet-shop").mkdir()
    done = run_cli("new", "Pet Shop", "-o", str(tmp_path), "--renderer", renderer)
    assert done.returncode == 1
    assert done.stderr == (f"corkweb: error: {tmp_path / 'pet-shop'} already exists: choose "
                           "another name, or another folder with -o DIR\n")


def test_new_records_where_corkweb_came_from(tmp_path: Path) -> None:
    """The project depends on this checkout by URL, so it installs where corkweb is not
    published: pip builds corkweb from the recorded folder into a fresh environment."""
    done = run_cli("new", "Cork Demo", "-o", str(tmp_path), "--renderer", "builtin",
                   "--no-websocket")
    assert done.returncode == 0, done.stderr
    project = tmp_path / "cork-demo"
    checkout = Path(__file__).resolve().parent.parent
    assert f'dependencies = ["corkweb @ {checkout.as_uri()}"]' in (
        project / "pyproject.toml").read_text()
    # --system-site-packages only for jinja2, orjson and the build tools (no index here);
    # corkweb itself must come from the recorded folder, not from the environment around it.
    venv = tmp_path / "venv"
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", str(project)],
        capture_output=True, text=True, env=env, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    where = subprocess.run(
        [python, "-P", "-c", "import corkweb, cork_demo; print(corkweb.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(venv)), where.stdout


# -- the debug page ---------------------------------------------------------------------------

BUGGY = '''\
from corkweb import App

app = App(templates=None, debug=True)


def average(values):
    total = sum(values)
    return total / len(values)


@app.get("/average/:name")
def handler(res, req):
    res.end(str(average([])))
'''


def _load(path: Path, source: str) -> Any:
    import importlib.util

    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_debug_page_leads_with_the_exception_and_the_developers_code(tmp_path: Path) -> None:
    import httpx

    app = _load(tmp_path / "buggy.py", BUGGY).app
    with TestServer(app) as server:
        url = server.url + "/average/x?q=1"
        page = httpx.get(url, headers={"accept": "text/html"}).text
        body = httpx.get(url, headers={"accept": "application/json"}).json()
        text = httpx.get(url).text
    assert '<h1 class="exception">ZeroDivisionError: division by zero</h1>' in page
    ours, _, folded = page.partition("<details>")
    frames = [line for line in ours.splitlines() if 'class="frame"' in line]
    # The innermost of the developer's frames first; corkweb's own only in the folded part.
    assert [f.split(" in ")[-1].split("<")[0] for f in frames] == ["average", "handler"]
    assert all(str(tmp_path / "buggy.py") in f for f in frames)
    assert ('<tr class="error"><td class="n">8</td><td>    return total / len(values)</td></tr>'
            in ours)
    assert "corkweb/" not in ours.replace("corkweb/templates", "")
    assert "corkweb/app.py" in folded and "<summary>Full traceback" in folded
    assert "<td>route</td><td>/average/:name</td>" in ours
    assert "<td>url</td><td>/average/x?q=1</td>" in ours
    assert body["message"] == "ZeroDivisionError: division by zero"
    assert body["exception"] == {"type": "ZeroDivisionError", "message": "division by zero"}
    assert [(f["function"], f["code"]) for f in body["frames"]] == [
        ("average", "return total / len(values)"), ("handler", "res.end(str(average([])))")]
    assert text.startswith("500 Internal Server Error: ZeroDivisionError: division by zero\n")
    assert f"{tmp_path / 'buggy.py'}:8 in average" in text


@pytest.mark.parametrize(("flags", "env"), [
    pytest.param(("--debug",), {}, id="flag"),
    pytest.param((), {"CORKWEB_DEBUG": "1"}, id="variable"),
    pytest.param((), {}, id="off"),
])
def test_debug_mode_from_the_command_line_or_the_environment(
        tmp_path: Path, flags: tuple[str, ...], env: dict[str, str]) -> None:
    import httpx

    (tmp_path / "buggy.py").write_text(BUGGY.replace("debug=True", ""))
    with CLIProcess("run", "buggy", "--port", "0", *flags, cwd=tmp_path,
                    env=cli_env(**env)) as cli:
        cli.ready()
        r = httpx.get(cli.url + "/average/x", headers={"accept": "application/json"}, timeout=5)
        assert cli.stop() == 0, cli.output
    assert r.status_code == 500
    expected = "ZeroDivisionError: division by zero" if flags or env else "Internal Server Error"
    assert r.json()["message"] == expected


def test_debug_variable_switches_on_an_app_built_in_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORKWEB_DEBUG", "1")
    assert App(templates=None).debug is True
    monkeypatch.setenv("CORKWEB_DEBUG", "0")
    assert App(templates=None).debug is False and App(templates=None, debug=True).debug
    monkeypatch.setenv("CORKWEB_DEBUG", "sometimes")
    with pytest.raises(ValueError, match="CORKWEB_DEBUG='sometimes'"):
        App(templates=None)


# -- middleware that stops the chain without answering ------------------------------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_middleware_that_returns_none_without_answering_is_named(
        is_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    import httpx

    def require_login(res: Any, req: Any, data: Any) -> Any:
        if req.get_header("authorization"):
            return True
        return None  # the bug: neither answered nor passed on

    async def require_login_async(res: Any, req: Any, data: Any) -> Any:
        return require_login(res, req, data)

    app = App(templates=None)
    app.use(require_login_async if is_async else require_login)
    app.get("/", lambda res, req: res.end("in"))
    with TestServer(app) as server:
        r = httpx.get(server.url + "/", timeout=5)
        ok = httpx.get(server.url + "/", headers={"authorization": "x"}, timeout=5)
    assert ok.text == "in"
    name = "require_login_async" if is_async else "require_login"
    assert r.status_code == 500
    assert r.text.startswith(f"500 Internal Server Error: middleware {name}")
    assert "test_first_hour.py:" in r.text and "stopped the chain without answering" in r.text
    assert f"middleware {name}" in caplog.text and "handler for" not in caplog.text


# -- the WebSocket guide's chat, as written -------------------------------------------------------


def test_the_websocket_guides_chat_works_as_written() -> None:
    """docs/websockets.md: the decorator chat reads the room from ``ws.get_user_data()``
    without an upgrade behaviour: the route parameters are the default user data."""
    from test_docs import page_blocks

    namespace: dict[str, Any] = {"__name__": "chat_guide"}
    for block, _ in page_blocks("websockets.md")[:2]:
        exec(compile(block, "websockets.md", "exec"), namespace)
    app = namespace["app"]

    async def chat(port: int) -> list[Any]:
        url = f"ws://127.0.0.1:{port}/chat/"
        async with websockets.connect(url + "lobby") as ada, \
                websockets.connect(url + "lobby") as bob, \
                websockets.connect(url + "kitchen") as cid:
            await ada.send("hello lobby")
            heard = [await asyncio.wait_for(bob.recv(), 5)]
            await cid.send("hello kitchen")  # nobody else in that room
            await bob.send("hi ada")
            heard.append(await asyncio.wait_for(ada.recv(), 5))
            return heard

    with TestServer(app) as server:
        assert asyncio.run(chat(server.port)) == ["hello lobby", "hi ada"]


def test_a_small_testing_extra_for_users_app_tests() -> None:
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert sorted(req.split(">")[0] for req in extras["testing"]) == [
        "httpx", "pytest", "websockets"]
    guide = (root / "docs" / "testing.md").read_text()
    assert 'pip install "corkweb[testing]"' in guide


# -- serving an app again ------------------------------------------------------------------------

module_app = App(templates=None)
module_app_starts: list[int] = []
module_app.on_start(lambda: module_app_starts.append(1))


@module_app.get("/")
def _module_home(res: Any, req: Any) -> None:
    res.end("module-level app")


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_module_level_app_serves_in_every_test(attempt: int) -> None:
    """The testing guide's pattern, test after test: a fresh server each time."""
    from corkweb.testing import TestClient

    with TestClient(module_app, timeout=5) as client:
        assert client.get("/").text == "module-level app"
    assert len(module_app_starts) >= attempt  # the start hooks ran for each server


def test_serving_an_app_twice_at_once_fails_at_once() -> None:
    from corkweb.errors import AlreadyServingError
    from corkweb.testing import TestClient

    app = App(templates=None)
    app.get("/", lambda res, req: res.end("one"))
    with TestClient(app, timeout=5) as first:
        with pytest.raises(RuntimeError) as info:
            TestClient(app).__enter__()
        assert isinstance(info.value.__cause__, AlreadyServingError)
        assert "already being served" in str(info.value)
        assert "app factory" in str(info.value)
        assert first.get("/").text == "one"  # the first server is untouched
    with TestClient(app, timeout=5) as again:
        assert again.get("/").text == "one"


RUN_TWICE = '''\
import sys

from corkweb import App

app = App(templates=None)


@app.get("/")
def home(res, req):
    res.end("served")


for run in ("first", "second"):
    app.run(port=0)
    print(f"{run} run returned", flush=True)
'''


def test_app_run_twice_serves_twice(tmp_path: Path) -> None:
    import signal

    import httpx

    (tmp_path / "twice.py").write_text(RUN_TWICE)
    with CLIProcess(script=tmp_path / "twice.py", cwd=tmp_path) as proc:
        mark = 0
        for run in ("first", "second"):
            m = proc.wait_for(r"corkweb listening on http://127\.0\.0\.1:(\d+)", after=mark)
            assert httpx.get(f"http://127.0.0.1:{m.group(1)}/", timeout=5).text == "served"
            mark = proc.mark()
            proc.proc.send_signal(signal.SIGINT)
            proc.wait_for(f"{run} run returned")
        assert proc.proc.wait(20) == 0, proc.output
        proc.stop()
    assert "Event loop is closed" not in proc.output


LATE = '''\
from corkweb import App

app = App(templates=None)


@app.get("/")
def home(res, req):
    res.end("home")


app.run(port=0)


@app.get("/late")
def late(res, req):
    res.end("late")
'''


def test_routes_after_app_run_are_reported(tmp_path: Path) -> None:
    import signal

    import httpx

    (tmp_path / "late.py").write_text(LATE)
    with CLIProcess(script=tmp_path / "late.py", cwd=tmp_path) as proc:
        warning = proc.wait_for("app.run()")
        assert warning.string.endswith(
            "late.py:11: app.run() blocks while it serves, so what is registered below it "
            "(line 14) does not exist until it returns: call app.run() last"), warning.string
        port = proc.wait_for(r"corkweb listening on http://127\.0\.0\.1:(\d+)").group(1)
        assert httpx.get(f"http://127.0.0.1:{port}/late", timeout=5).status_code == 404
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(20) == 1
        proc.stop()
    assert ("cannot add route GET /late: app.run() (late.py:11) already served and returned"
            in proc.output), proc.output


# -- python app.py: the address, the log, a busy port ------------------------------------------------


def test_python_app_py_logs_like_corkweb_run(tmp_path: Path) -> None:
    import signal

    import httpx

    (tmp_path / "hello.py").write_text(HELLO + '''

@app.get("/boom")
def boom(res, req):
    raise RuntimeError("logged with a timestamp")


if __name__ == "__main__":
    app.run(port=0)
''')
    with CLIProcess(script=tmp_path / "hello.py", cwd=tmp_path) as proc:
        m = proc.wait_for(r"corkweb listening on http://127\.0\.0\.1:(\d+)")
        assert httpx.get(f"http://127.0.0.1:{m.group(1)}/boom", timeout=5).status_code == 500
        proc.wait_for("logged with a timestamp")
        assert proc.stop(signal.SIGINT) == 0
    # The command's format ([time] [pid] [LEVEL]), not the last-resort handler's bare text.
    lines = proc.output.splitlines()
    assert any(re.match(r"\[\S+ \S+\] \[\d+\] \[INFO\] corkweb listening on http://", line)
               for line in lines), proc.output
    assert any(re.match(r"\[\S+ \S+\] \[\d+\] \[ERROR\] unhandled error", line)
               for line in lines), proc.output
    assert any("shutting down" in line for line in lines), proc.output


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "busy.py").write_text(HELLO + f"\napp.run(port={port})\n")
        (tmp_path / "busy_cli.py").write_text(HELLO)
        done = subprocess.run([sys.executable, "busy.py"], cwd=tmp_path, env=cli_env(),
                              capture_output=True, text=True, timeout=30)
        cli = run_cli("run", "busy_cli", "--port", str(port), cwd=tmp_path)
    for result in (done,):
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1:] == result.stderr.strip().splitlines()
    line = done.stderr.strip()
    assert line == (f"corkweb: error: port {port} on 127.0.0.1 is already in use (another "
                    f"server, or an earlier one still running?); pick another port: "
                    f"app.run(port={port + 1}), corkweb run -p {port + 1} or "
                    f"CORKWEB_PORT={port + 1} (port 0 picks a free one)"), done.stderr
    assert cli.returncode == 1 and cli.stderr.strip().endswith(line.split(": error: ")[1]), (
        cli.stderr)


# -- Ctrl-C with a stuck request -------------------------------------------------------------------


def test_ctrl_c_says_what_it_waits_for_and_a_second_one_exits_now() -> None:
    import signal
    import threading
    import time

    import httpx

    failures: list[BaseException] = []

    def stuck_client(url: str) -> None:
        try:
            httpx.get(url + "/slow?s=600", timeout=30)
        except httpx.HTTPError as exc:  # the server drops it: expected
            failures.append(exc)

    with CLIProcess("run", "cli_app:app", "--port", "0") as cli:
        cli.ready()
        client = threading.Thread(target=stuck_client, args=(cli.url,), daemon=True)
        client.start()
        cli.wait_for("slow request started")
        cli.proc.send_signal(signal.SIGINT)
        waiting = cli.wait_for("waiting up to")
        assert waiting.string.endswith(
            "waiting up to 10s for 1 connection to finish: GET /slow; press Ctrl-C again to "
            "close it now"), waiting.string
        started = time.monotonic()
        cli.proc.send_signal(signal.SIGINT)
        assert cli.proc.wait(8) == 0, cli.output
        elapsed = time.monotonic() - started
        cli.stop()
        client.join(10)
    assert elapsed < 5, f"the second Ctrl-C took {elapsed:.1f}s (the drain timeout is 10 s)"
    assert "received SIGINT again: closing 1 connection now" in cli.output
    assert "on_shutdown ran" in cli.output  # the shutdown hooks still ran
    assert "Task was destroyed" not in cli.output and "pending" not in cli.output, cli.output
    assert failures  # the stuck client saw its connection closed


def test_a_syntax_error_in_the_app_is_shown_without_the_commands_frames(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("from corkweb import App\n\napp = App(\n")
    done = run_cli("run", "typo", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f'  File "{tmp_path / "typo.py"}", line 3\n'), done.stderr
    assert "Traceback" not in done.stderr and "importlib" not in done.stderr
    assert done.stderr.rstrip().endswith("SyntaxError: '(' was never closed (typo.py, line 3)")


def test_a_module_named_like_the_standard_librarys_is_explained(tmp_path: Path) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("needs python -P (3.11) to start the command as its console script does")
    (tmp_path / "email.py").write_text(HELLO)
    # -P: the `corkweb` script does not put the current folder first on sys.path (python -m
    # does, and then email.py breaks Python's own imports before corkweb runs at all).
    done = subprocess.run([sys.executable, "-P", "-m", "corkweb", "run", "email"],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith("corkweb: error: 'email' imported ")
    assert "not your email.py" in done.stderr and "rename email.py" in done.stderr


def test_listen_errors_are_one_line(tmp_path: Path) -> None:
    import socket

    (tmp_path / "hello.py").write_text(HELLO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workers = run_cli("run", "hello", "--port", str(port), "--workers", "2", cwd=tmp_path)
    assert workers.returncode == 1
    assert workers.stderr.startswith(f"corkweb: error: port {port} on 127.0.0.1 is already in "
                                     f"use"), workers.stderr
    assert len(workers.stderr.strip().splitlines()) == 1
    (tmp_path / "elsewhere.py").write_text(HELLO + '\napp.run(host="192.0.2.1", port=0)\n')
    done = subprocess.run([sys.executable, "elsewhere.py"], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "corkweb: error: cannot listen on 192.0.2.1: it is not an address of this machine; use "
        "127.0.0.1 (this machine only) or 0.0.0.0 (every interface): app.run(host=...), corkweb "
        "run -H ... or CORKWEB_HOST"), done.stderr


def test_the_cookiecutter_template_refuses_bad_names_too(tmp_path: Path) -> None:
    """``cookiecutter`` used directly on the template runs its pre-generation hook."""
    cookiecutter_main = pytest.importorskip("cookiecutter.main")
    from cookiecutter.exceptions import FailedHookException

    template = Path(__file__).resolve().parent.parent / "cookiecutter"
    with pytest.raises(FailedHookException):
        cookiecutter_main.cookiecutter(str(template), no_input=True, output_dir=str(tmp_path),
                                       extra_context={"project_name": "json"})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("pattern", "better"), [
    ("/users/{id}", "/users/:id"),
    ("/users/<id>", "/users/:id"),
    ("/users/<int:id>", "/users/:id<int>"),
    ("/files/{rest:path}", "/files/:rest<path>"),
])
def test_route_parameters_from_other_frameworks_are_translated(pattern: str, better: str) -> None:
    app = App(templates=None)
    with pytest.raises(ValueError) as info:
        app.get(pattern, lambda res, req: None)
    assert str(info.value).endswith(f"is not a parameter in corkweb; write {better!r}")
    app.get(better, lambda res, req: None)  # and the suggestion is a valid pattern


def test_run_without_an_app_points_at_the_likely_module(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HELLO)
    done = run_cli("run", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("corkweb: error: no app given: corkweb run module:app (or set "
                                   "CORKWEB_APP); app.py is here: corkweb run app")


def test_a_failing_start_hook_is_reported_once_and_named(tmp_path: Path) -> None:
    (tmp_path / "hooked.py").write_text(
        "from corkweb import App\n\napp = App(templates=None)\n\n\n@app.on_start\n"
        "def connect():\n    raise ConnectionError('database refused the connection')\n\n\n"
        "app.run(port=0)\n")
    done = subprocess.run([sys.executable, "hooked.py"], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1, done.stderr
    assert "an on_start hook failed (connect, hooked.py:6); not serving" in done.stderr
    assert done.stderr.rstrip().endswith(
        "ConnectionError: database refused the connection"), done.stderr


def test_a_test_client_given_the_factory_says_to_call_it() -> None:
    from corkweb.testing import TestClient

    def create_app() -> App:
        return App(templates=None)

    with pytest.raises(TypeError, match=r"create_app is function, not a corkweb App: call it, "
                                        r"TestClient\(create_app\(\)\)"):
        TestClient(create_app)


MODULE_WITH_CODE_AFTER_RUN = '''\
import os
import sys

from corkweb import App
from corkweb.callsite import registrations_after

app = App(templates=None)
cache = {}
found = registrations_after(sys._getframe())  # where the app.run() call would be
value = os.environ.get("HOME")
cache.get("key")
print(value)


@app.get("/late")
def late(res, req):
    res.end("late")


chat = app.ws("/chat")
app.use(lambda res, req, data: True)
app.route("GET", "/r", late)
'''


def test_only_registrations_below_the_run_call_are_reported(tmp_path: Path) -> None:
    module = _load(tmp_path / "after.py", MODULE_WITH_CODE_AFTER_RUN)
    assert module.found == [15, 20, 21, 22]  # not os.environ.get nor cache.get
