"""``corkweb new``: render the project scaffold (a cookiecutter template), offline.

Where the template is found, in order:

1. ``--template DIR`` or ``CORKWEB_TEMPLATE``;
2. ``corkweb/project_template/`` inside an installed wheel: ``setup.py``'s ``build_py`` hook
   copies the repository's ``cookiecutter/`` folder there (``MANIFEST.in`` puts it in sdists);
3. ``cookiecutter/`` next to the ``corkweb`` package: a checkout or an editable install
   (``pip install -e .``) — the case today, since the folder lives at the repository's top.

How it is rendered: with the ``cookiecutter`` package when it is installed (``no_input``, a
local folder: no network), else with the small built-in renderer below, which implements the
part of cookiecutter the scaffold uses: ``cookiecutter.json`` defaults (Jinja2 expressions over
earlier keys, a list means a choice whose first item is the default), rendered folder and file
names and contents, ``_copy_without_render`` globs, and ``hooks/pre_gen_project.py`` /
``post_gen_project.py`` run in the new project's folder.
"""

from __future__ import annotations

import fnmatch
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["find_template", "render_project", "render_builtin", "check_package_name",
           "corkweb_requirement", "ProjectNameError"]

PACKAGE_DIR = Path(__file__).resolve().parent


def find_template(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The scaffold folder (one holding ``cookiecutter.json``); see the module docstring."""
    candidates = ([Path(explicit)] if explicit else
                  [PACKAGE_DIR / "project_template", PACKAGE_DIR.parent / "cookiecutter"])
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise FileNotFoundError(
        "no corkweb project template (cookiecutter.json) found in "
        + ", ".join(str(c) for c in candidates)
        + "; pass --template DIR or set CORKWEB_TEMPLATE")


class ProjectNameError(ValueError):
    """A project name whose package could not be imported (or would shadow another)."""


#: Import names a project must not take: corkweb, what it depends on, what its tests use.
TAKEN_NAMES = frozenset({
    "corkweb", "jinja2", "orjson", "uvloop", "httptools", "wsproto", "httpx", "websockets",
    "pytest", "msgspec", "setuptools", "cookiecutter", "tests", "test",
})


def check_package_name(package: str, project_name: str) -> None:
    """Refuse a package name that cannot be imported, or that hides a module the project
    needs (the standard library, corkweb and its dependencies); suggest one that works."""
    problem = None
    if not package.isidentifier():
        problem = "is not a Python identifier (letters, digits and _, not starting with a digit)"
    elif keyword.iskeyword(package):
        problem = "is a Python keyword"
    elif package in sys.stdlib_module_names:
        problem = "is a standard-library module, which the project's imports would hide"
    elif package.lower() in TAKEN_NAMES:
        problem = "is the name of corkweb or of a package it needs"
    if problem is None:
        return
    raise ProjectNameError(
        f"{project_name!r} would make a package named {package!r}, which {problem}; "
        f"try: corkweb new {_suggest(package)}")


def _suggest(package: str) -> str:
    words = [w for w in re.split(r"[^0-9a-zA-Z]+", package) if w] or ["my"]
    if words[0][0].isdigit():
        words.insert(0, "my")
    slug = "-".join(words).lower()
    if "-" not in slug or slug.replace("-", "_") in sys.stdlib_module_names:
        slug += "-app"
    return slug


def corkweb_requirement() -> str:
    """The requirement a new project puts on corkweb: where this corkweb came from.

    A checkout (this package sits next to a ``pyproject.toml`` naming corkweb, as with
    ``pip install -e`` or ``PYTHONPATH``) or an install from a local folder gives
    ``corkweb @ file:///...``, so the project installs in a fresh virtual environment even
    where corkweb is not published; otherwise the released package, ``corkweb>=VERSION``.
    """
    from . import __version__

    checkout = PACKAGE_DIR.parent
    pyproject = checkout / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"corkweb"', pyproject.read_text(
            encoding="utf-8"), re.M):
        return f"corkweb @ {checkout.as_uri()}"
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        direct = distribution("corkweb").read_text("direct_url.json")
    except PackageNotFoundError:
        direct = None
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file:"):
            return f"corkweb @ {url}"
    return f"corkweb>={__version__}"


def render_project(template: Path, context: dict[str, Any], output_dir: str | os.PathLike[str],
                   renderer: str = "auto") -> Path:
    """Render ``template`` with ``context`` overriding its defaults; returns the project path."""
    if renderer not in ("auto", "cookiecutter", "builtin"):
        raise ValueError(f"unknown renderer {renderer!r}")
    if renderer != "builtin":
        try:
            from cookiecutter.main import cookiecutter
        except ImportError:
            if renderer == "cookiecutter":
                raise
        else:
            return Path(cookiecutter(str(template), no_input=True, extra_context=context,
                                     output_dir=str(output_dir)))
    return render_builtin(template, context, output_dir)


def _environment() -> Any:
    from jinja2 import Environment, StrictUndefined

    return Environment(keep_trailing_newline=True, undefined=StrictUndefined)


def build_context(template: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """``cookiecutter.json`` with ``overrides`` applied and its expressions rendered."""
    raw = json.loads((template / "cookiecutter.json").read_text(encoding="utf-8"))
    env = _environment()
    context: dict[str, Any] = {}
    for key, default in raw.items():
        if key.startswith("_"):
            context[key] = default
            continue
        if key in overrides:
            value = overrides[key]
            if isinstance(default, list) and value not in default:
                raise ValueError(f"{key} must be one of {default}, got {value!r}")
        elif isinstance(default, list):
            value = default[0]
        else:
            value = default
        if isinstance(value, str):
            value = env.from_string(value).render(cookiecutter=context)
        context[key] = value
    return context


def render_builtin(template: Path, overrides: dict[str, Any],
                   output_dir: str | os.PathLike[str]) -> Path:
    """Render without the ``cookiecutter`` package (Jinja2 only)."""
    context = build_context(template, overrides)
    env = _environment()
    roots = [p for p in template.iterdir() if p.is_dir() and "{{" in p.name]
    if len(roots) != 1:
        raise ValueError(f"{template}: expected one '{{{{cookiecutter.…}}}}' folder")
    root = roots[0]
    project = Path(output_dir) / env.from_string(root.name).render(cookiecutter=context)
    if project.exists():
        raise FileExistsError(f"{project} already exists")
    copy_only = list(context.get("_copy_without_render", []))

    def render(text: str) -> str:
        return str(env.from_string(text).render(cookiecutter=context))

    hooks = template / "hooks"
    project.mkdir(parents=True)
    try:
        _run_hook(hooks / "pre_gen_project.py", project, render)
        for folder, dirs, files in os.walk(root):
            rel = Path(folder).relative_to(root)
            target = project / Path(*(render(part) for part in rel.parts))
            target.mkdir(parents=True, exist_ok=True)
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                source = Path(folder) / name
                out = target / render(name)
                unrendered = (rel / name).as_posix()
                if any(fnmatch.fnmatch(unrendered, pattern) for pattern in copy_only):
                    shutil.copyfile(source, out)
                else:
                    try:
                        text = source.read_text(encoding="utf-8")
                    except UnicodeDecodeError:
                        shutil.copyfile(source, out)  # binary: copied as is
                    else:
                        out.write_text(render(text), encoding="utf-8")
                shutil.copymode(source, out)
        _run_hook(hooks / "post_gen_project.py", project, render)
    except BaseException:
        shutil.rmtree(project, ignore_errors=True)
        raise
    return project


def _run_hook(hook: Path, project: Path, render: Any) -> None:
    if not hook.is_file():
        return
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, encoding="utf-8") as f:
        f.write(render(hook.read_text(encoding="utf-8")))
    try:
        done = subprocess.run([sys.executable, f.name], cwd=project, capture_output=True,
                              text=True)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"hook {hook.name} failed with status {done.returncode}:\n"
                           f"{done.stderr}")
