"""``--reload``: the stat-polling watcher, and a real CLI picking up an edited file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from cli_process import CLIProcess

from corkweb.server.reload import StatWatcher

APP_V1 = '''
import os
from corkweb import App

app = App(templates=None)

@app.get("/")
def home(res, req):
    res.end("version {version}")

@app.get("/pid")
def pid(res, req):
    res.end(str(os.getpid()) + " version {version}")
'''


def _bump(path: Path, text: str) -> None:
    """Rewrite ``path`` so that its (mtime, size) surely changes."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # pragma: no cover - a coarse-mtime file system
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_watcher_reports_added_changed_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("a = 1\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>1</p>")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "notes.bin").write_bytes(b"\0")
    watcher = StatWatcher([str(tmp_path)], interval=0.1)
    assert watcher.watched == 2
    assert watcher.changed() == []
    _bump(tmp_path / "templates" / "page.html", "<p>2</p>")
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")  # ignored
    (tmp_path / "notes.bin").write_bytes(b"\0\0")  # not a watched pattern
    assert watcher.changed() == [str(tmp_path / "templates" / "page.html")]
    (tmp_path / "new.py").write_text("")
    (tmp_path / "app.py").unlink()
    assert watcher.changed() == [str(tmp_path / "app.py"), str(tmp_path / "new.py")]
    assert watcher.changed() == []


def test_watcher_scan_cost_is_small(tmp_path: Path) -> None:
    """The cost of polling: one stat per file per scan (reported, loosely bounded)."""
    for i in range(20):
        sub = tmp_path / f"pkg{i}"
        sub.mkdir()
        for j in range(25):
            (sub / f"m{j}.py").write_text("")
    watcher = StatWatcher([str(tmp_path)])
    assert watcher.watched == 500
    start = time.process_time()
    for _ in range(10):
        watcher.changed()
    per_scan = (time.process_time() - start) / 10
    # ~1-3 ms on the development machine; the bound only catches an accidental O(n^2).
    assert per_scan < 0.1, f"{per_scan * 1000:.1f} ms CPU per scan of 500 files"


def _get(url: str) -> str:
    return httpx.get(url, timeout=5).text


def _wait_for_text(url: str, expected: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = _get(url)
        if got == expected:
            return
        time.sleep(0.05)  # polling the server for the new answer (the signal is the answer)
    raise AssertionError(f"still {got!r}, expected {expected!r}")


def _worker_pid(url: str, version: int, timeout: float = 20.0) -> int:
    """The pid of a worker serving ``version``: during a reload the old workers drain and may
    still answer a new connection, and they exit soon after."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = _get(url + "/pid")
        pid, _, served = got.partition(" ")
        if served == f"version {version}":
            return int(pid)
        time.sleep(0.05)  # polling for an answer from the new worker (the answer is the signal)
    raise AssertionError(f"no worker of version {version} answered /pid (last: {got!r})")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_reload_picks_up_an_edited_file_and_survives_a_broken_one(tmp_path: Path) -> None:
    module = tmp_path / "reload_app.py"
    module.write_text(APP_V1.format(version=1))
    with CLIProcess("run", "reload_app:app", "--reload", "--app-dir", str(tmp_path),
                    "--port", "0", "--reload-interval", "0.1", cwd=tmp_path) as cli:
        cli.ready()
        assert _get(cli.url + "/") == "version 1"
        first_pid = _worker_pid(cli.url, 1)

        mark = cli.mark()
        _bump(module, APP_V1.format(version=2))
        cli.wait_for(r"reload: .*reload_app\.py changed", after=mark)
        cli.wait_for("new workers ready; old workers stopping gracefully", after=mark)
        _wait_for_text(cli.url + "/", "version 2")
        second_pid = _worker_pid(cli.url, 2)
        assert second_pid != first_pid

        # A broken edit: the new worker fails to import, the running one keeps serving.
        mark = cli.mark()
        _bump(module, "def broken(:\n")
        cli.wait_for("before it was ready; the previous workers keep serving", after=mark)
        assert "SyntaxError" in cli.output
        assert _get(cli.url + "/") == "version 2"

        # Fixing it is picked up as well.
        mark = cli.mark()
        _bump(module, APP_V1.format(version=3))
        cli.wait_for("new workers ready", after=mark)
        _wait_for_text(cli.url + "/", "version 3")

        # The serving worker does not poll: no CPU while idle (the supervisor polls).
        worker = _worker_pid(cli.url, 3)
        before = _cpu(worker)
        time.sleep(1.0)  # measuring idle CPU over a period needs the period
        assert _cpu(worker) - before <= 0.02
        assert cli.stop() == 0, cli.output
