"""A typed handler's signature, read once at freeze and turned into an extraction plan.

For every parameter the plan records where its value comes from (the route, the query string,
a header, a cookie, the JSON body, the response or request objects, a dependency) and how it is
converted. The conversion work is prepared here, so that a request does only this:

* the route, query, header and cookie inputs of a function are gathered into one dict and
  converted by **one** ``msgspec.convert`` call into a Struct built for that function
  (``msgspec.defstruct``); msgspec keeps the Struct's type information, where converting each
  value on its own would rebuild it every time (0.56 µs for two fields, against 0.65-1.3 µs for
  *each* field converted alone);
* the body is decoded by a ``msgspec.json.Decoder`` made for its type (or pydantic's
  ``model_validate_json`` for a pydantic model).

Only when that fast path fails are the inputs converted one by one, to report every failure.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union

import msgspec

from ..errors import BadRequest
from ..request import Request
from ..response import Response
from .params import NO_DEFAULT, Depends, Param
from .problems import msgspec_errors, pydantic_errors

__all__ = ["Field", "Plan", "is_classic", "build_plan", "is_structured"]

RES, REQ, DEP, INPUT = "res", "req", "dep", "input"
# Parameter names that take the response or the request when they carry no annotation.
_RES_NAMES = ("res", "response")
_REQ_NAMES = ("req", "request")
# Annotations a classic (res, req) handler may carry on its two parameters.
_CLASSIC = (Response, Request, Any, object, "Response", "Request", "Any", "object",
            "corkweb.Response", "corkweb.Request", "res", "req")
_UNIONS: tuple[Any, ...] = (Union, types.UnionType)


def _is_pydantic_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return (pydantic is not None and isinstance(tp, type)
            and issubclass(tp, pydantic.BaseModel))


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, a, b]`` -> ``(T, [a, b])``; other types -> ``(tp, [])``."""
    if typing.get_origin(tp) is Annotated:
        args = typing.get_args(tp)
        return args[0], list(args[1:])
    return tp, []


def is_structured(tp: Any) -> bool:
    """Whether a type is read from the JSON body when no marker says otherwise."""
    tp, _ = _strip(tp)
    origin = typing.get_origin(tp)
    if origin in _UNIONS:
        return any(is_structured(arg) for arg in typing.get_args(tp) if arg is not type(None))
    if origin is not None:
        if origin in (dict, typing.Mapping) or (
                isinstance(origin, type) and issubclass(origin, dict)):
            return True
        return any(is_structured(arg) for arg in typing.get_args(tp) if arg is not Ellipsis)
    if not isinstance(tp, type):
        return False
    if tp is dict:
        return True
    return (issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp)
            or typing.is_typeddict(tp) or _is_pydantic_model(tp))


def _is_many(tp: Any) -> bool:
    """``list[int]``, ``tuple[str, ...]``, ``set[str]`` (optionally ``| None``): a query
    parameter or header that may repeat."""
    tp, _ = _strip(tp)
    origin = typing.get_origin(tp)
    if origin in _UNIONS:
        return any(_is_many(arg) for arg in typing.get_args(tp) if arg is not type(None))
    return origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset)


@dataclasses.dataclass
class Field:
    """One input of a function: a parameter read from the request."""

    name: str  # the Python parameter name (the keyword it is passed as)
    source: str  # "path", "query", "header", "cookie" or "body"
    key: str  # its name on the wire: the route parameter, query key, header or cookie name
    type: Any  # the annotation, constraints included (markers stripped)
    default: Any  # NO_DEFAULT when required
    many: bool = False
    marker: Param | None = None

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


@dataclasses.dataclass
class Injection:
    """A parameter that receives the response, the request or a dependency's value."""

    name: str
    what: str  # RES, REQ or DEP
    depends: Depends | None = None
    plan: Plan | None = None


class Plan:
    """How to call one function (a handler or a dependency provider) for a request."""

    def __init__(self, fn: Callable[..., Any], where: str) -> None:
        self.fn = fn
        self.where = where  # for messages: "handler create (POST /items)"
        self.fields: list[Field] = []  # route, query, header and cookie inputs
        self.body: list[Field] = []
        self.injections: list[Injection] = []
        self.return_type: Any = inspect.Signature.empty
        self.kind = _kind(fn)  # "function", "coroutine", "generator", "asyncgen"
        self.classic = False  # a (res, req) handler run behind group dependencies
        self.params_struct: type[msgspec.Struct] | None = None
        self._by_source: dict[str, list[tuple[str, str, bool]]] = {}
        self.body_decode: Callable[[bytes], Any] | None = None
        self.body_embedded = False
        self.body_pydantic: Any = None

    @property
    def is_async(self) -> bool:
        return self.kind in ("coroutine", "asyncgen")

    @property
    def needs_input(self) -> bool:
        return bool(self.fields or self.body)

    # -- built at freeze ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the Struct for the parameters and the body decoder (once)."""
        if self.fields:
            spec: list[tuple[Any, ...]] = []
            for field in self.fields:
                if field.default is NO_DEFAULT:
                    spec.append((field.name, field.type))
                else:
                    spec.append((field.name, field.type, field.default))
            # Required fields first: a Struct does not allow one after a field with a default.
            spec.sort(key=lambda item: len(item) == 3)
            try:
                self.params_struct = msgspec.defstruct(f"Params_{_ident(self.where)}", spec)
                msgspec.json.schema_components([self.params_struct])
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{self.where}: a parameter type is not supported: {exc}"
                                ) from None
            for field in self.fields:
                self._by_source.setdefault(field.source, []).append(
                    (field.name, field.key, field.many))
        if self.body:
            self._prepare_body()

    def _prepare_body(self) -> None:
        if len(self.body) == 1 and not (self.body[0].marker and
                                        getattr(self.body[0].marker, "embed", False)):
            tp = self.body[0].type
            if _is_pydantic_model(_strip(tp)[0]):
                self.body_pydantic = _strip(tp)[0]
                return
            try:
                self.body_decode = msgspec.json.Decoder(tp).decode
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{self.where}: body type {tp!r} is not supported: {exc}"
                                ) from None
            return
        # Several body parameters (or Body(embed=True)): each is a member of one object.
        self.body_embedded = True
        spec: list[tuple[Any, ...]] = []
        for field in self.body:
            if _is_pydantic_model(_strip(field.type)[0]):
                raise TypeError(f"{self.where}: a pydantic model must be the whole body "
                                f"(parameter {field.name!r}); use a msgspec Struct to embed it")
            if field.default is NO_DEFAULT:
                spec.append((field.key, field.type))
            else:
                spec.append((field.key, field.type, field.default))
        spec.sort(key=lambda item: len(item) == 3)
        struct = msgspec.defstruct(f"Body_{_ident(self.where)}", spec)
        self.body_decode = msgspec.json.Decoder(struct).decode

    # -- per request ---------------------------------------------------------------------------

    def collect(self, req: Any) -> dict[str, Any]:
        """The raw (text) values of the route, query, header and cookie inputs present."""
        raw: dict[str, Any] = {}
        by_source = self._by_source
        fields = by_source.get("path")
        if fields:
            for name, key, _ in fields:
                value = req.get_parameter(key)
                if value is not None:
                    # A typed route segment (:id<int>) gives an int, a float or a UUID: back
                    # to its text, which converts to whatever the parameter is annotated.
                    raw[name] = value if value.__class__ is str else str(value)
        fields = by_source.get("query")
        if fields:
            queries = req.get_queries()
            for name, key, many in fields:
                values = queries.get(key)
                if values:
                    raw[name] = values if many else values[0]
        fields = by_source.get("header")
        if fields:
            headers = req.get_headers()
            for name, key, many in fields:
                text = headers.get(key)
                if text is not None:
                    raw[name] = [v.strip() for v in text.split(",")] if many else text
        fields = by_source.get("cookie")
        if fields:
            cookies = req.get_cookies()
            for name, key, _ in fields:
                text = cookies.get(key)
                if text is not None:
                    raw[name] = text
        return raw

    def convert_params(self, req: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
        """The converted route/query/header/cookie inputs as keyword arguments."""
        raw = self.collect(req)
        try:
            params = msgspec.convert(raw, self.params_struct, strict=False)
        except msgspec.ValidationError:
            self._each_error(raw, errors)
            return {}
        return msgspec.structs.asdict(params)

    def _each_error(self, raw: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        """The slow path: convert every input alone to report each failure."""
        for field in self.fields:
            loc: list[Any] = [field.source, field.key]
            if field.name not in raw:
                if field.required:
                    errors.append({"loc": loc, "msg": "Field required", "type": "missing"})
                continue
            try:
                msgspec.convert(raw[field.name], field.type, strict=False)
            except msgspec.ValidationError as exc:
                errors.extend(msgspec_errors(exc, loc, raw[field.name]))

    def decode_body(self, data: bytes, errors: list[dict[str, Any]]) -> dict[str, Any]:
        """The body's keyword arguments; failures go to ``errors`` (malformed JSON: 400)."""
        if not data:
            out: dict[str, Any] = {}
            for field in self.body:
                if field.required:
                    if not self.body_embedded:
                        errors.append({"loc": ["body"], "msg": "Field required",
                                       "type": "missing"})
                        return {}
                    errors.append({"loc": ["body", field.key], "msg": "Field required",
                                   "type": "missing"})
                else:
                    out[field.name] = field.default
            return out
        if self.body_pydantic is not None:
            return {self.body[0].name: self._pydantic_body(data, errors)}
        assert self.body_decode is not None
        try:
            value = self.body_decode(data)
        except msgspec.ValidationError as exc:
            errors.extend(msgspec_errors(exc, ["body"], None))
            return {}
        except msgspec.DecodeError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        except RecursionError:  # arrays or objects nested thousands deep, into an Any
            raise BadRequest("request body is not valid JSON: nested too deeply") from None
        if not self.body_embedded:
            return {self.body[0].name: value}
        return {field.name: getattr(value, field.key) for field in self.body}

    def _pydantic_body(self, data: bytes, errors: list[dict[str, Any]]) -> Any:
        import pydantic

        try:
            return self.body_pydantic.model_validate_json(data)
        except pydantic.ValidationError as exc:
            found = pydantic_errors(exc, ["body"])
            if any(e["type"] == "json_invalid" for e in found):
                raise BadRequest(f"request body is not valid JSON: {found[0]['msg']}"
                                 ) from None
            errors.extend(found)
            return None


def _ident(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:60]


def _kind(fn: Callable[..., Any]) -> str:
    target: Any = fn
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)) and not isinstance(fn, type):
        target = type(fn).__dict__.get("__call__", fn)  # a callable object: its method
    if inspect.isasyncgenfunction(target):
        return "asyncgen"
    if inspect.iscoroutinefunction(target):
        return "coroutine"
    if inspect.isgeneratorfunction(target):
        return "generator"
    return "function"


def is_classic(fn: Callable[..., Any], path_params: tuple[str, ...] = ()) -> bool:
    """Whether ``fn`` is a classic ``(res, req)`` handler (``(res, req, data)`` with middleware
    data): two or three positional parameters, none annotated with anything but
    ``Response``/``Request``/``Any``, none named after a route parameter, no marker default."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: the socketify call form
        return True
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = []
    for p in params:
        if isinstance(p.default, (Param, Depends)):
            return False
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional.append(p)
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return False
    if len(positional) not in (2, 3):
        return False
    for p in positional:
        if p.name in path_params:
            return False
        ann = p.annotation
        if ann is p.empty or ann is None:
            continue
        if typing.get_origin(ann) is Annotated:
            return False
        if not any(ann is c or ann == c for c in _CLASSIC):
            return False
    return True


def _hints(fn: Callable[..., Any], where: str) -> dict[str, Any]:
    target: Any = fn
    if isinstance(fn, type):
        target = vars(fn).get("__init__", fn)
    elif not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        target = type(fn).__dict__.get("__call__", fn)  # a callable object: its method
    try:
        # Not typing.get_type_hints: on Python 3.10 it wraps the annotation of a parameter
        # defaulting to None in Optional[...], hiding an Annotated[..., Header()] inside.
        return inspect.get_annotations(target, eval_str=True)
    except Exception as exc:  # NameError, TypeError: anything evaluating the text may raise
        raise TypeError(f"{where}: cannot resolve its annotations ({exc}); with "
                        "'from __future__ import annotations' the types must be importable "
                        "from the module, not local to a function") from exc


def build_plan(fn: Callable[..., Any], where: str, path_params: tuple[str, ...],
               plans: dict[Any, Plan] | None = None, stack: tuple[Any, ...] = ()) -> Plan:
    """Read ``fn``'s signature into a :class:`Plan` (dependencies planned recursively;
    ``plans`` shares the plans of cached providers, ``stack`` finds cycles)."""
    if fn in stack:
        names = " -> ".join(_name(f) for f in (*stack[stack.index(fn):], fn))
        raise TypeError(f"{where}: dependency cycle: {names}")
    stack = (*stack, fn)
    plan = Plan(fn, where)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: cannot read its signature: {exc}") from None
    hints = _hints(fn, where)
    plan.return_type = hints.get("return", inspect.Signature.empty)
    plans = {} if plans is None else plans
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{where}: *{p.name} cannot be filled from a request; name each "
                            "parameter")
        ann = hints.get(p.name, p.annotation if p.annotation is not p.empty else Any)
        base, extras = _strip(ann)
        marker: Param | Depends | None = None
        for extra in extras:
            if isinstance(extra, (Param, Depends)):
                marker = extra
        default = p.default
        if isinstance(default, (Param, Depends)):
            marker, default = default, (default.default if isinstance(default, Param)
                                        else NO_DEFAULT)
        elif default is p.empty:
            default = NO_DEFAULT
        if isinstance(marker, Param) and marker.default is not NO_DEFAULT:
            default = marker.default
        if isinstance(marker, Depends):
            sub = plans.get(marker.provider) if marker.use_cache else None
            if sub is None:
                sub = build_plan(marker.provider, f"dependency {_name(marker.provider)}",
                                 path_params, plans, stack)
                if marker.use_cache:
                    plans[marker.provider] = sub
            plan.injections.append(Injection(p.name, DEP, marker, sub))
            continue
        if marker is None:
            if isinstance(base, type) and issubclass(base, Response):
                plan.injections.append(Injection(p.name, RES))
                continue
            if isinstance(base, type) and issubclass(base, Request):
                plan.injections.append(Injection(p.name, REQ))
                continue
            if ann is Any and p.name in _RES_NAMES:
                plan.injections.append(Injection(p.name, RES))
                continue
            if ann is Any and p.name in _REQ_NAMES:
                plan.injections.append(Injection(p.name, REQ))
                continue
        # A request input. The type without our markers (msgspec ignores them anyway, but
        # the OpenAPI schema is cleaner without them).
        metas = [e for e in extras if not isinstance(e, (Param, Depends))]
        tp = Annotated.__class_getitem__((base, *metas)) if metas else base  # type: ignore[attr-defined]
        if isinstance(marker, Param):
            source = marker.source or "query"
        elif p.name in path_params:
            source = "path"
        elif is_structured(base):
            source = "body"
        else:
            source = "query"
        if source == "path" and p.name not in path_params and (
                not marker or not marker.alias or marker.alias not in path_params):
            raise TypeError(f"{where}: parameter {p.name!r} is marked Path() but the route "
                            f"has no :{(marker.alias if marker else None) or p.name}")
        key = marker.alias if isinstance(marker, Param) and marker.alias else p.name
        if source == "header" and not (isinstance(marker, Param) and marker.alias):
            key = p.name.replace("_", "-")
        if source == "header":
            key = key.lower()
        field = Field(p.name, source, key, tp, default, _is_many(base) and source in (
            "query", "header"), marker if isinstance(marker, Param) else None)
        if source == "body":
            plan.body.append(field)
        elif is_structured(base) and source != "path":
            raise TypeError(f"{where}: parameter {p.name!r}: a structured type cannot come "
                            f"from the {source}; use Body() or a scalar type")
        else:
            plan.fields.append(field)
    plan.prepare()
    return plan


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)

