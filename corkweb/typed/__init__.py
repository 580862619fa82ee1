"""Typed handlers: parameters, bodies and answers declared by annotations; dependencies;
the OpenAPI document.

A handler whose signature is not the classic ``(res, req)`` is read once when the app freezes
(:mod:`.plan`) and wrapped into a classic handler that extracts, converts and validates its
inputs with msgspec (:mod:`.route`), runs its dependencies (:mod:`.dependencies`) and answers
with what it returns (:mod:`.returns`). Classic handlers are not touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..response import PENDING
from ..routing import Route
from .params import Body, Cookie, Depends, Header, Param, Path, Query
from .plan import is_classic
from .returns import answer_value, app_encoder
from .route import TypedRoute, build_route

__all__ = ["Api", "Body", "Cookie", "Depends", "Header", "Param", "Path", "Query",
           "TypedRoute", "ROUTE_OPTIONS", "check_options", "group_options", "prepare"]

# What a route decorator accepts besides ``name`` (docs/typed-handlers.md, docs/openapi.md).
ROUTE_OPTIONS = frozenset(("status", "summary", "description", "tags", "responses",
                           "deprecated", "include_in_schema", "operation_id", "dependencies"))


def check_options(method: str, path: str, options: dict[str, Any]) -> dict[str, Any]:
    """Refuse an unknown or mistyped route option where the route is declared."""
    unknown = sorted(set(options) - ROUTE_OPTIONS)
    if unknown:
        raise TypeError(f"route {method} {path}: unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(ROUTE_OPTIONS))}")
    status = options.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f"route {method} {path}: status must be an int from 100 to 599, "
                         f"got {status!r}")
    for dep in options.get("dependencies", ()):
        if not isinstance(dep, Depends) and not callable(dep):
            raise TypeError(f"route {method} {path}: dependencies take Depends(provider) "
                            f"or providers, got {dep!r}")
    if isinstance(options.get("tags"), str):
        raise TypeError(f"route {method} {path}: tags takes a list of names, not a string")
    return options


def group_options(group: Any, options: dict[str, Any]) -> dict[str, Any]:
    """A route's options with its group's dependencies (run first) and tags added."""
    if group.dependencies:
        options["dependencies"] = (*group.dependencies, *options.get("dependencies", ()))
    if group.tags:
        options["tags"] = [*group.tags, *options.get("tags", ())]
    return options


def prepare(fn: Callable[..., Any], method: str, path: str, options: dict[str, Any],
            dumps: Callable[[Any], bytes], default_json: bool) -> TypedRoute | None:
    """The typed wrapper of a route's handler, or None for a classic handler that needs
    none (no dependencies): that one is served exactly as registered."""
    path_params = Route(method, path, None, None, 0).param_names
    deps = list(options.get("dependencies", ()))
    classic = is_classic(fn, path_params)
    if classic and not deps:
        return None
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return build_route(fn, f"handler {name} ({method} {path})", path_params,
                       status=options.get("status") or 200, dependencies=deps,
                       classic=classic, dumps=dumps, default_json=default_json)


class Api:
    """The typed side of an App: the encoder of returned values, the typed routes, and the
    OpenAPI settings (``App(title=, version=, openapi=, docs=)``): the routes serving the
    document and the documentation page are registered here, when the App is created."""

    def __init__(self, app: Any, title: str, version: str, openapi_url: str | None,
                 docs_url: str | None, json_option: int | None,
                 json_default: Callable[[Any], Any] | None) -> None:
        self.title = title
        self.version = version
        if docs_url and not openapi_url:
            openapi_url = "/openapi.json"  # the page needs the document
        self.openapi_url = openapi_url
        self.docs_url = docs_url
        self.dumps = app_encoder(json_option, json_default)
        self.default_json = json_option is None and json_default is None
        self.routes: dict[int, TypedRoute | None] = {}  # id(route spec) -> its typed route
        self._document: dict[str, Any] | None = None
        if openapi_url:
            from .openapi import document_handler

            app.get(openapi_url, document_handler(app), include_in_schema=False)
        if docs_url and openapi_url:
            from .docs_ui import register_docs

            register_docs(app, docs_url, openapi_url, title)

    def typed_route(self, spec: Any) -> TypedRoute | None:
        """The typed route of a registration (planned on first use), or None if classic."""
        key = id(spec)
        if key not in self.routes:
            self.routes[key] = prepare(spec.handler, spec.method, spec.path, spec.options,
                                       self.dumps, self.default_json)
        return self.routes[key]

    def wrap(self, spec: Any) -> Callable[..., Any]:
        """The handler to serve for a registration: the typed wrapper, or the handler."""
        found = self.typed_route(spec)
        return spec.handler if found is None else found.handler

    def returned(self, result: Any, res: Any, status: int) -> Any:
        """A handler returned ``result`` (neither None nor ``res``): answer with it unless it
        started answering (ended or streaming), or ``result`` is work for the server (an
        awaitable, returned as is)."""
        if hasattr(result, "__await__") or res.phase is not PENDING:
            return result
        answer_value(res, result, status, self.dumps)
        return None

    def document(self, specs: list[Any], frozen: bool) -> dict[str, Any]:
        """The OpenAPI document (built once the app is frozen, then kept)."""
        if self._document is not None:
            return self._document
        from .openapi import build_document

        document = build_document(self, specs)
        if frozen:
            self._document = document
        return document
