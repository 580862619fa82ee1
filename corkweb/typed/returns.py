"""Answering with what a handler returns.

A handler that returns a value without having responded answers with it: ``str`` as UTF-8
``text/plain``, ``bytes`` as ``application/octet-stream``, anything else (a msgspec Struct, a
dataclass, a pydantic model, a dict, a list, ...) as JSON through the app's encoder, with the
status given to the route decorator (``@app.post("/items", status=201)``). A typed handler's
return annotation converts the value (an object that is not an instance of the annotated class
is converted to it, dropping what the class does not declare) and documents the answer.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

__all__ = ["app_encoder", "answer_value", "make_responder"]

_OCTETS = "application/octet-stream"


def _to_builtins(obj: Any) -> Any:
    """orjson's ``default`` hook for the types it does not know."""
    if isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    dump = getattr(obj, "model_dump", None)  # a pydantic model
    if dump is not None and callable(dump):
        return dump(mode="json")
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def app_encoder(option: int | None, default: Callable[[Any], Any] | None
                ) -> Callable[[Any], bytes]:
    """The app's orjson encoder (its ``json_option`` and ``json_default``), taught msgspec
    Structs and pydantic models."""
    opt = option or 0
    if default is None:
        hook = _to_builtins
    else:
        user = default

        def hook(obj: Any) -> Any:
            if isinstance(obj, msgspec.Struct) or hasattr(obj, "model_dump"):
                return _to_builtins(obj)
            return user(obj)

    def encode(obj: Any) -> bytes:
        return orjson.dumps(obj, default=hook, option=opt)

    return encode


def answer_value(res: Any, value: Any, status: int, dumps: Callable[[Any], bytes]) -> None:
    """Answer ``value`` (see the module docstring) with ``status``."""
    if status != 200:
        res.write_status(status)
    cls = value.__class__
    if cls is str:
        res.end(value)
    elif value is None:
        res.end(b"")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        res.write_header("content-type", _OCTETS)
        res.end(bytes(value))
    else:
        # A Fragment passes through the app's orjson encoder as it is, and res.end gives it
        # the JSON content type on its fast path.
        res.end(orjson.Fragment(dumps(value)))


def _enc_hook(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if dump is not None and callable(dump):
        return dump(mode="json")
    # msgspec's enc_hook contract: NotImplementedError means "a type I do not know", which
    # msgspec turns into its own encode error naming the type.
    raise NotImplementedError(f"Type is not JSON serializable: {type(obj).__name__}")


def make_responder(return_type: Any, status: int, dumps: Callable[[Any], bytes],
                   default_json: bool) -> Callable[[Any, Any], None]:
    """``respond(res, value)`` for a typed handler, prepared for its return annotation.

    ``default_json``: the app uses orjson with no options, so a Struct or dataclass answer can
    go through msgspec's own encoder.
    """
    target = return_type
    if target is inspect.Signature.empty or target is None or target is Any:
        return lambda res, value: answer_value(res, value, status, dumps)
    cls = target if isinstance(target, type) else None
    pydantic = sys.modules.get("pydantic")
    if cls is not None and pydantic is not None and issubclass(cls, pydantic.BaseModel):
        model: Any = cls

        def respond_model(res: Any, value: Any) -> None:
            if value.__class__ is not model and not isinstance(value, (str, bytes)) and (
                    value is not None):
                value = model.model_validate(value, from_attributes=True)
            answer_value(res, value, status, dumps)

        return respond_model
    if cls is not None and (issubclass(cls, msgspec.Struct) or dataclasses.is_dataclass(cls)):
        encode = msgspec.json.Encoder(enc_hook=_enc_hook).encode if default_json else dumps
        struct: Any = cls

        def respond_struct(res: Any, value: Any) -> None:
            if value.__class__ is not struct:
                if value is None or isinstance(value, (str, bytes)):
                    answer_value(res, value, status, dumps)
                    return
                value = msgspec.convert(value, struct, from_attributes=True)
            if status != 200:
                res.write_status(status)
            res.end(orjson.Fragment(encode(value)))

        return respond_struct
    return lambda res, value: answer_value(res, value, status, dumps)
