"""Build hooks: the optional C core, and the top-level cookiecutter/ scaffold in the wheel.

The C core (corkweb/wire/_speedups.c, corkweb/server/_speedups.c) is built when a compiler is
at hand; a build that fails leaves the pure-Python classes in charge (corkweb/wire/speedups.py),
with a warning in pip's output. CORKWEB_PURE_PYTHON=1 at build time skips it. Everything else
about the build is in pyproject.toml. The scaffold lives at the repository's top (DESIGN.md §3); wheels carry a copy as ``corkweb/project_template/`` (see corkweb/scaffold.py).
"""

import shutil
from pathlib import Path

import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py


class BuildPyWithScaffold(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "cookiecutter"
        if source.is_dir():
            target = Path(self.build_lib) / "corkweb" / "project_template"
            shutil.copytree(source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


ext_modules = [] if os.environ.get("CORKWEB_PURE_PYTHON") else [
    Extension("corkweb.wire._speedups", ["corkweb/wire/_speedups.c"],
              depends=["corkweb/wire/_head.h"], optional=True),
    Extension("corkweb.server._speedups", ["corkweb/server/_speedups.c"],
              depends=["corkweb/wire/_head.h"], optional=True),
]
setup(cmdclass={"build_py": BuildPyWithScaffold}, ext_modules=ext_modules)
