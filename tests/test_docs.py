"""The documentation: it builds strictly, its Python blocks parse, its syscall counts hold."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(missing("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python")),
                    reason="mkdocs and mkdocstrings[python] are not installed "
                           "(pip install -e .[test])")
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "corking" / "index.html").is_file()
    assert (tmp_path / "api" / "index.html").is_file()


def test_nav_lists_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert f" {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_python_blocks_parse_and_import_only_corkweb(page: str) -> None:
    text = (DOCS / page).read_text()
    for n, block in enumerate(PYTHON_BLOCK.findall(text)):
        compile(block, f"{page}[python block {n}]", "exec")
        for line in block.splitlines():
            m = re.match(r"\s*(?:from|import) (corkweb\S*)", line)
            if m:
                assert m.group(1) in ("corkweb", "corkweb.testing"), (page, line)


# -- every Python block runs as written ------------------------------------------------------
#
# A page's blocks run in order in one namespace, as a reader pastes them into one file, inside an
# empty project folder (with `public/`, `static/` and `templates/` folders, as the scaffold has)
# that is also on sys.path. A block whose first line is `# file: NAME.py` is written to that file
# instead (a module the other blocks import). `app.run()` compiles the app and returns instead of
# serving. A page that defines `test_*` functions is then run by pytest, as its reader would.
# A block preceded by `<!-- docs-test: skip (why) -->` only parses: keep those rare.

SKIP_MARK = "<!-- docs-test: skip"
FILE_MARK = re.compile(r"^# file: ([\w/]+\.py)\n")


def page_blocks(page: str) -> list[tuple[str, bool]]:
    """``(source, runs)`` for each Python block of ``page``."""
    text = (DOCS / page).read_text()
    return [(m.group(1),
             not text[:m.start()].rstrip().rsplit("\n", 1)[-1].startswith(SKIP_MARK))
            for m in PYTHON_BLOCK.finditer(text)]


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")
                                        if "```python" in p.read_text()))
def test_python_blocks_run_as_written(page: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import corkweb

    project = tmp_path / "project"
    for folder in ("public", "static", "templates"):
        (project / folder).mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    served: list[Any] = []
    monkeypatch.setattr(corkweb.App, "run", lambda app, *a, **k: (app.freeze(), served.append(app)))
    main = project / "example.py"
    module = types.ModuleType("example")  # a real module: dataclasses look their module up
    module.__file__ = str(main)
    monkeypatch.setitem(sys.modules, "example", module)
    namespace = module.__dict__
    written: list[str] = []
    test_source = []
    try:
        for n, (block, runs) in enumerate(page_blocks(page)):
            if not runs:
                continue
            named = FILE_MARK.match(block)
            if named:
                (project / named.group(1)).write_text(block)
                written.append(named.group(1)[:-3].replace("/", "."))
                continue
            main.write_text(main.read_text() + block if main.exists() else block)
            test_source.append(block)
            try:
                exec(compile(block, f"{page}[python block {n}]", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page}, python block {n} fails as written: "
                                     f"{type(exc).__name__}: {exc}") from exc
    finally:
        for module in written:
            sys.modules.pop(module, None)
    if not any(name.startswith("test_") for name in namespace):
        return
    # A page of tests: run them as its reader would (the browser test where Chromium is).
    tests = project / f"test_{page.replace('-', '_').removesuffix('.md')}.py"
    tests.write_text("\n\n".join(test_source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])}
    deselect = [] if shutil.which("chromium") else ["-k", "not chromium"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error", *deselect, tests.name], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_corking_page_numbers_are_reproducible() -> None:
    """docs/corking.md shows these counts; docs/strace/count_sends.py reproduces them."""
    counts = {}
    for server in ("uncorked.py", "corked.py"):
        out = subprocess.run(
            [sys.executable, str(DOCS / "strace" / "count_sends.py"),
             str(DOCS / "strace" / server)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stdout + out.stderr
        counts[server] = out.stdout.strip()
    page = (DOCS / "corking.md").read_text()
    assert counts["uncorked.py"] in page
    assert counts["corked.py"] in page
    assert counts["corked.py"].endswith("1 request -> 1 send syscalls; "
                                        "16 pipelined requests -> 1 send syscalls")


def test_every_example_is_listed_and_tested() -> None:
    index = (DOCS / "index.md").read_text()
    for example in sorted(p.parent.name for p in (ROOT / "examples").glob("*/app.py")):
        assert f"| `{example}` |" in index, f"docs/index.md does not list examples/{example}"
        marks = (f"examples/{example}", f'load_example("{example}")', f'"examples" / "{example}"')
        tested = [t for t in (ROOT / "tests").glob("test_*.py")
                  if t.name.startswith(f"test_example_{example}")
                  or any(m in t.read_text() for m in marks)]
        assert tested, f"no test in tests/ drives examples/{example}"


def test_api_reference_covers_every_public_name() -> None:
    import corkweb

    api = (DOCS / "api.md").read_text()
    undocumented = [name for name in corkweb.__all__
                    if not name.startswith("__") and f"::: corkweb.{name}\n" not in api]
    assert not undocumented, f"add these to docs/api.md: {undocumented}"


def test_cli_page_lists_every_option() -> None:
    from corkweb.config import OPTIONS

    page = (DOCS / "cli.md").read_text()
    missing = [opt.long for opt in OPTIONS
               if f"| `{opt.long}`" not in page or f"`{opt.env}`" not in page]
    assert not missing, f"add these flags to docs/cli.md's tables: {missing}"


def test_the_most_used_classes_document_every_public_method() -> None:
    """The API page shows members with a docstring (App with the ones it inherits)."""
    import inspect

    import corkweb

    for cls in (corkweb.App, corkweb.RouteGroup, corkweb.Request, corkweb.Response,
                corkweb.WebSocket):
        bare = [name for name, member in inspect.getmembers(cls)
                if not name.startswith("_") and (callable(member) or isinstance(member, property))
                and not inspect.getdoc(member.fget if isinstance(member, property) else member)]
        assert not bare, f"{cls.__name__}: add docstrings to {bare}"
    assert "inherited_members: true" in (DOCS / "api.md").read_text().split("::: corkweb.App")[1]
