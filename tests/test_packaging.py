"""What corkweb ships: a platform wheel carries the C core next to the Python code, the sdist
carries its sources, and a build without the C core (no compiler, or CORKWEB_PURE_PYTHON=1)
is a working pure-Python wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"corkweb/wire/_speedups.c", "corkweb/wire/_head.h", "corkweb/server/_speedups.c"}


def checkout(tmp: Path) -> Path:
    """A copy of the source tree (builds write build/ and egg-info next to their input)."""
    copy = tmp / "src"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", "*.so", ".hypothesis", "site",
        "node_modules", ".*_cache"))
    return copy


def build(source: Path, out: Path, what: str, **env: str) -> Path:
    """Build a wheel or an sdist of ``source`` into ``out`` with the setuptools installed here."""
    script = (f"from setuptools import build_meta as b; import sys; "
              f"print(b.build_{what}(sys.argv[1]))")
    # Only what this call asks for decides whether the C core is built (not the variable a
    # pure-Python run of the suite has set).
    inherited = {k: v for k, v in os.environ.items() if k != "CORKWEB_PURE_PYTHON"}
    done = subprocess.run([sys.executable, "-c", script, str(out)], cwd=source,
                          env={**inherited, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_carries_the_c_core_and_the_sdist_its_sources(tmp_path: Path) -> None:
    source = checkout(tmp_path)
    wheel = build(source, tmp_path, "wheel")
    assert "-none-any" not in wheel.name, wheel.name  # a platform wheel: it holds C code
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("corkweb/wire/_speedups", "corkweb/server/_speedups"):
        assert any(n.startswith(module) and n.endswith((".so", ".pyd")) for n in names), module
    assert "corkweb/project_template/cookiecutter.json" in names  # the scaffold, as before

    sdist = build(source, tmp_path, "sdist")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert SOURCES <= members, SOURCES - members


def test_a_build_without_the_c_core_is_a_pure_python_wheel_that_serves(tmp_path: Path) -> None:
    source = checkout(tmp_path)
    wheel = build(source, tmp_path, "wheel", CORKWEB_PURE_PYTHON="1")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert not list(site.rglob("*.so"))
    # Without the variable at run time: the Python twins serve because nothing else is there.
    env = {k: v for k, v in os.environ.items() if k != "CORKWEB_PURE_PYTHON"}
    env["PYTHONPATH"] = str(site)
    script = (
        "import asyncio; from corkweb.server.speedups import SPEEDUPS; "
        "from corkweb.testing import connect; loop = asyncio.new_event_loop(); "
        "conn, tr = connect(lambda res, req: res.end('pure'), loop); "
        "conn.data_received(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); "
        "print(SPEEDUPS, tr.data.endswith(b'pure'))")
    flags = ["-P"] if sys.version_info >= (3, 11) else []  # not the current folder first
    done = subprocess.run([sys.executable, *flags, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr
