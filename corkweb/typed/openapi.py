"""The OpenAPI 3.1 document of an app, built once from its routes.

Typed routes are described fully: parameters with their JSON Schema (constraints included),
the request body, the answer (from the return annotation and the route's ``status``), and the
422 problem document when the route has inputs. Classic routes get their method, path and path
parameters. JSON Schemas come from ``msgspec.json.schema_components`` in one call for the
whole app, so a Struct used by several routes is one component (pydantic models bring their
own ``model_json_schema``).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec

from ..routing import PARAM, PATH, STATIC, Route
from ..websocket import WebSocketRoute
from .params import NO_DEFAULT
from .plan import Plan, _strip
from .route import TypedRoute

__all__ = ["build_document", "document_handler"]

REF = "#/components/schemas/{name}"
_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
_CONVERTER_SCHEMAS = {
    "str": {"type": "string"}, "path": {"type": "string"},
    "int": {"type": "integer"}, "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
PROBLEM = {
    "title": "ValidationProblem",
    "description": "RFC 9457 problem details for request inputs that failed validation.",
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {
                "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                "msg": {"type": "string"}, "type": {"type": "string"},
            },
            "required": ["loc", "msg", "type"],
        }},
    },
    "required": ["type", "title", "status", "detail", "errors"],
}


def _is_pydantic(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


class _Schemas:
    """Collects every type first, then turns them all into schemas in one msgspec call."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.components: dict[str, Any] = {}
        self._done: list[dict[str, Any]] = []

    def add(self, tp: Any) -> int:
        self.types.append(tp)
        return len(self.types) - 1

    def build(self) -> None:
        plain = [tp for tp in self.types if not _is_pydantic(_strip(tp)[0])]
        schemas, components = msgspec.json.schema_components(plain, ref_template=REF)
        self.components.update(components)
        found = iter(schemas)
        for tp in self.types:
            base = _strip(tp)[0]
            if _is_pydantic(base):
                schema = base.model_json_schema(ref_template=REF.replace("{name}", "{model}"))
                self.components.update(schema.pop("$defs", {}))
                self.components[base.__name__] = schema
                self._done.append({"$ref": REF.format(name=base.__name__)})
            else:
                self._done.append(next(found))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._done[index]


def _openapi_path(route: Route) -> str | None:
    parts = []
    for seg in route.segments:
        if seg.rank == STATIC:
            parts.append(seg.text)
        elif seg.rank in (PARAM, PATH):
            parts.append("{" + seg.name + "}")
        else:
            return None  # a '*' has no OpenAPI spelling
    return "/" + "/".join(parts)


def _title(name: str) -> str:
    return name.replace("_", " ").strip().title()


def _json_value(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return None


def build_document(api: Any, specs: list[Any]) -> dict[str, Any]:
    """The document for ``specs`` (the app's route registrations)."""
    schemas = _Schemas()
    pending: list[tuple[str, str, dict[str, Any], Callable[[], None]]] = []
    names: dict[str, int] = {}
    for spec in specs:
        if spec.options.get("include_in_schema") is False or spec.method not in _METHODS:
            continue
        if isinstance(getattr(spec.handler, "__self__", None), WebSocketRoute):
            continue  # a WebSocket route: not an HTTP operation
        route = Route(spec.method, spec.path, None, None, 0)
        path = _openapi_path(route)
        if path is None:
            continue
        fn = spec.handler
        name = getattr(fn, "__name__", None) or type(fn).__name__
        names[name] = names.get(name, 0) + 1
        typed = api.typed_route(spec)
        operation: dict[str, Any] = {}
        finish = _describe(operation, spec, route, typed, schemas)
        pending.append((path, spec.method.lower(), operation, finish))
    schemas.build()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for path, method, operation, finish in pending:
        finish()
        op_id = operation["operationId"]
        if names.get(op_id, 0) > 1 or op_id in used:
            op_id = f"{op_id}_{method}_" + "".join(
                c if c.isalnum() else "_" for c in path).strip("_")
            operation["operationId"] = op_id
        used.add(op_id)
        paths.setdefault(path, {})[method] = operation
    components = dict(sorted(schemas.components.items()))
    components["ValidationProblem"] = PROBLEM
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version},
        "paths": paths,
        "components": {"schemas": components},
    }


def _describe(operation: dict[str, Any], spec: Any, route: Route, typed: TypedRoute | None,
              schemas: _Schemas) -> Callable[[], None]:
    """Fill what needs no schema now; return the function that adds the schemas later."""
    fn = spec.handler
    options = spec.options
    name = getattr(fn, "__name__", None) or type(fn).__name__
    operation["operationId"] = options.get("operation_id") or name
    operation["summary"] = options.get("summary") or _title(name)
    doc = options.get("description") or inspect.getdoc(fn)
    if doc and (inspect.isfunction(fn) or inspect.ismethod(fn) or options.get("description")):
        operation["description"] = doc
    if options.get("tags"):
        operation["tags"] = list(dict.fromkeys(options["tags"]))
    if options.get("deprecated"):
        operation["deprecated"] = True
    status = str(options.get("status") or 200)
    params: list[tuple[Any, int]] = []
    body: list[tuple[Any, int]] = []
    plans: list[Plan] = typed.inputs if typed is not None else []
    seen: set[tuple[str, str]] = set()
    for plan in plans:
        for field in plan.fields:
            if (field.source, field.key) not in seen:
                seen.add((field.source, field.key))
                params.append((field, schemas.add(field.type)))
        for field in plan.body:
            body.append((field, schemas.add(field.type)))
    handler_plan = typed.plan if typed is not None else None
    returns = handler_plan.return_type if handler_plan is not None else inspect.Signature.empty
    ret_index = None
    if returns not in (inspect.Signature.empty, None, type(None), str, bytes):
        ret_index = schemas.add(returns)
    extra: list[tuple[str, Any, int | None]] = []
    for code, value in (options.get("responses") or {}).items():
        index: int | None = None
        if not isinstance(value, (dict, str)):
            index = schemas.add(value)
        extra.append((str(code), value, index))

    def finish() -> None:
        parameters = []
        documented = {field.key for field, _ in params if field.source == "path"}
        for field, index in params:
            parameters.append(_parameter(field, schemas[index]))
        for seg in route.segments:  # path parameters a classic handler reads itself
            if seg.name and seg.name not in documented:
                parameters.append({"name": seg.name, "in": "path", "required": True,
                                   "schema": dict(_CONVERTER_SCHEMAS[seg.conv])})
        if parameters:
            operation["parameters"] = parameters
        if body:
            operation["requestBody"] = _request_body(body, schemas)
        responses: dict[str, Any] = {}
        answer: dict[str, Any] = {"description": _phrase(status)}
        if ret_index is not None:
            answer["content"] = {"application/json": {"schema": schemas[ret_index]}}
        elif returns is str:
            answer["content"] = {"text/plain": {"schema": {"type": "string"}}}
        elif returns is bytes:
            answer["content"] = {"application/octet-stream": {}}
        responses[status] = answer
        if params or body:
            responses["422"] = {
                "description": "The request inputs failed validation",
                "content": {"application/problem+json": {
                    "schema": {"$ref": REF.format(name="ValidationProblem")}}},
            }
        for code, value, at in extra:
            if isinstance(value, dict):
                responses[code] = {"description": _phrase(code), **value}
            elif isinstance(value, str):
                responses[code] = {"description": value}
            else:
                assert at is not None
                responses[code] = {"description": _phrase(code), "content": {
                    "application/json": {"schema": schemas[at]}}}
        operation["responses"] = responses

    return finish


def _parameter(field: Any, schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    if field.default is not NO_DEFAULT and field.default is not None:
        value = _json_value(field.default)
        if value is not None:
            schema["default"] = value
    out: dict[str, Any] = {"name": field.key, "in": field.source,
                           "required": field.source == "path" or field.required,
                           "schema": schema}
    marker = field.marker
    if marker is not None:
        if marker.description:
            out["description"] = marker.description
        if marker.example is not NO_DEFAULT:
            out["example"] = _json_value(marker.example)
        if marker.deprecated:
            out["deprecated"] = True
    return out


def _request_body(body: list[tuple[Any, int]], schemas: _Schemas) -> dict[str, Any]:
    first = body[0][0]
    media = getattr(first.marker, "media_type", "application/json")
    embedded = len(body) > 1 or getattr(first.marker, "embed", False)
    if not embedded:
        out: dict[str, Any] = {"required": first.required,
                               "content": {media: {"schema": schemas[body[0][1]]}}}
        if first.marker is not None and first.marker.description:
            out["description"] = first.marker.description
        return out
    properties = {field.key: schemas[index] for field, index in body}
    required = [field.key for field, _ in body if field.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {media: {"schema": schema}}}


def _phrase(code: str) -> str:
    try:
        return HTTPStatus(int(code)).phrase
    except ValueError:
        return "Response"


def document_handler(app: Any) -> Callable[[Any, Any], None]:
    """A classic handler answering the app's document (encoded on first request)."""
    encoded: list[bytes] = []

    def openapi_document(res: Any, req: Any) -> None:
        if not encoded:
            encoded.append(msgspec.json.encode(app.openapi()))
        res.send(encoded[0], content_type="application/json")

    return openapi_document
