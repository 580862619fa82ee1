"""The documentation: it builds strictly, its Python blocks parse, its syscall counts hold."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
