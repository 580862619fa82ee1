"""The layering rules of STYLE.md, checked on the source: one writer, imports one way."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "corkweb"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Absolute names of what ``path`` imports from corkweb (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def test_only_the_corker_calls_transport_write() -> None:
    offenders = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("write", "writelines", "sendfile")):
                target = node.func.value
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if "transport" in name and path.name != "corker.py":
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_wire_is_sans_io() -> None:
    for path in (PACKAGE / "wire").glob("*.py"):
        for name in imported(path):
            root = name.split(".")[0]
            assert root not in {"asyncio", "socket", "selectors", "threading", "ssl"}, (path, name)
            if name.startswith("corkweb"):
                assert name.startswith(("corkweb.wire", "corkweb.errors")), (path, name)


# The framework layer: what user code is handed and how the app is described. The server
# builds request, response and WebSocket objects through classes the app hands it at start-up.
_FRAMEWORK = ("corkweb.app", "corkweb.routing", "corkweb.request", "corkweb.response",
              "corkweb.websocket", "corkweb.middleware", "corkweb.routegroup", "corkweb.typed",
              "corkweb.body", "corkweb.static", "corkweb.sse", "corkweb.multipart")


def _is_framework(name: str) -> bool:
    return any(name == mod or name.startswith(mod + ".") for mod in _FRAMEWORK)


def test_server_imports_nothing_of_the_framework_layer() -> None:
    for path in (PACKAGE / "server").glob("*.py"):
        for name in imported(path):
            assert not _is_framework(name), (path, name)


def _load_time_imports(path: Path) -> set[str]:
    """What a module imports when it is loaded: top-level statements, not function bodies
    nor ``if TYPE_CHECKING:`` blocks."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else [])) if node.level else (
                node.module or "")
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_app_imports_no_server_module_at_load_time() -> None:
    for name in _load_time_imports(PACKAGE / "app.py"):
        assert not name.startswith("corkweb.server"), name


def test_routing_is_pure() -> None:
    for name in imported(PACKAGE / "routing.py"):
        assert name.split(".")[0] not in {"asyncio", "socket"}, name
        if name.startswith("corkweb"):
            assert name.startswith("corkweb.errors"), name


def test_modules_stay_small() -> None:
    too_big = {p.name: n for p in modules() if (n := len(p.read_text().splitlines())) > 650}
    assert too_big == {}


# The classes whose private members stay private, and the modules allowed to touch them: the
# class's own module (and, for the response, the exchange it builds on).
_PRIVATE_OWNERS = {"res", "req", "response", "request"}
_OWN_MODULES = {"response.py", "request.py", "server/exchange.py", "server/intake.py",
                "wire/parser.py"}


def _owner(node: ast.expr) -> str | None:
    """``res`` for ``res._x`` and for ``self._res._x``: whose attribute is being read."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr.lstrip("_")
    return None


def test_no_module_reaches_into_a_request_or_response() -> None:
    offenders = []
    roots = [PACKAGE, PACKAGE.parent / "tests", PACKAGE.parent / "examples"]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix() if root is PACKAGE else None
            if rel in _OWN_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                        and not node.attr.startswith("__")
                        and _owner(node.value) in _PRIVATE_OWNERS):
                    where = path.relative_to(PACKAGE.parent)
                    offenders.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == [], "use or add a public member instead:\n" + "\n".join(offenders)
