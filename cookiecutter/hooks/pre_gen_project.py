"""Refuse a project whose package could not be imported, before anything is written.

`corkweb new` checks the same thing first, with a suggestion (corkweb/scaffold.py); this hook
covers `cookiecutter path/to/cookiecutter` used directly.
"""

import keyword
import sys

PACKAGE = "{{ cookiecutter.package }}"
TAKEN = {"corkweb", "jinja2", "orjson", "uvloop", "httptools", "wsproto", "httpx",
         "websockets", "pytest", "msgspec", "setuptools", "cookiecutter", "tests", "test"}

if not PACKAGE.isidentifier() or keyword.iskeyword(PACKAGE) or PACKAGE in getattr(
        sys, "stdlib_module_names", ()) or PACKAGE.lower() in TAKEN:
    sys.exit(f"error: the package name {PACKAGE!r} cannot be imported or hides a module the "
             f"project needs; choose another project name (e.g. {PACKAGE.strip('_') or 'my'}"
             f"-app, not starting with a digit)")
