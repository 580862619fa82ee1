"""The cookiecutter scaffold: render it into an empty folder, install it, run its tests."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corkweb import App
from corkweb.pg_server import find_postgres_bindir

cookiecutter_main = pytest.importorskip(
    "cookiecutter.main", reason="the cookiecutter package is not installed (pip install -e .[test])")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cookiecutter"
WEBSOCKETS_READY = callable(getattr(App, "ws", None))


def render(out: Path, **answers: str) -> Path:
    context = {"project_name": "Cork Demo", "author": "Test Author", **answers}
    project = cookiecutter_main.cookiecutter(
        str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=context)
    return Path(project)


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("with_websocket", "with_templates", "database"), [
    pytest.param("no", "yes", "none", id="templates"),
    pytest.param("no", "no", "none", id="bare"),
    pytest.param("yes", "yes", "none", id="websocket+templates", marks=pytest.mark.skipif(
        not WEBSOCKETS_READY, reason="corkweb has no App.ws yet (WebSockets are being built)")),
    pytest.param("no", "yes", "sqlite", id="sqlite"),
    # Its tests start their own throw-away PostgreSQL server (corkweb.testing.PostgresServer).
    pytest.param("no", "no", "postgres", id="postgres", marks=pytest.mark.skipif(
        find_postgres_bindir() is None or importlib.util.find_spec("asyncpg") is None,
        reason="PostgreSQL server or asyncpg not installed")),
])
def test_rendered_project_installs_and_passes_its_tests(
        tmp_path: Path, with_websocket: str, with_templates: str, database: str) -> None:
    project = render(tmp_path / "out", with_websocket=with_websocket,
                     with_templates=with_templates, database=database)
    assert project.name == "cork-demo"
    package = project / "cork_demo"
    assert (package / "templates").exists() == (with_templates == "yes")
    assert (package / "realtime.py").exists() == (with_websocket == "yes")
    assert (project / "tests" / "test_websocket.py").exists() == (with_websocket == "yes")
    for path in (package / "db.py", package / "notes.py", project / "tests" / "test_notes.py"):
        assert path.exists() == (database != "none"), path
    if database == "postgres":
        assert '"asyncpg>=0.30"' in (project / "pyproject.toml").read_text()
    readme = (project / "README.md").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in readme
    assert "python -m cork_demo" in readme
    assert not list(project.rglob("*{{*")), "an unrendered path name is left"

    # Install it (not editable, into a folder of its own): the tests then run against what
    # was installed, package data (templates, static files) included.
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # Build with the setuptools already here when there is one (fast, offline); setuptools
    # older than 70.1 also needs the wheel package for that.
    offline = all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel"))
    isolation = ["--no-build-isolation"] if offline else []
    installed = run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                     "--disable-pip-version-check", "--target", str(site), str(project)],
                    cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (site / "cork_demo" / "static" / "style.css").is_file()

    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    # -P: do not put the project folder on sys.path, so the installed copy is what is tested
    flags = ["-P"] if sys.version_info >= (3, 11) else []
    tests = run([sys.executable, *flags, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests"], cwd=project, env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    assert "skipped" not in tests.stdout, tests.stdout  # the database tests ran too


def test_rendered_python_is_valid_for_every_option(tmp_path: Path) -> None:
    for ws, tpl, database in itertools.product(("yes", "no"), ("yes", "no"),
                                               ("none", "sqlite", "postgres")):
        project = render(tmp_path / f"{ws}-{tpl}-{database}", with_websocket=ws,
                         with_templates=tpl, database=database)
        for source in project.rglob("*.py"):
            compile(source.read_text(), str(source), "exec")
