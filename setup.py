"""Build hook: ship the top-level cookiecutter/ scaffold inside the wheel for `corkweb new`.

Everything else about the build is in pyproject.toml. The scaffold lives at the repository's top
(DESIGN.md §3); wheels carry a copy as ``corkweb/project_template/`` (see corkweb/scaffold.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithScaffold(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "cookiecutter"
        if source.is_dir():
            target = Path(self.build_lib) / "corkweb" / "project_template"
            shutil.copytree(source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithScaffold})
