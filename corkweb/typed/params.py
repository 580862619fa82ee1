"""The markers that say where a typed handler's parameter comes from.

They are used in ``Annotated`` (``x_token: Annotated[str, Header()]``) or as the default value
(``limit: int = Query(10, alias="max")``, ``db = Depends(get_db)``). They are plain records:
the plan (:mod:`corkweb.typed.plan`) reads them once, when the app freezes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Body", "Cookie", "Depends", "Header", "Param", "Path", "Query", "NO_DEFAULT"]


class _NoDefault:
    """The default of a marker that has none (``None`` is a valid default)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __bool__(self) -> bool:
        return False


NO_DEFAULT: Any = _NoDefault()


class Param:
    """A request input: where it comes from, under which name, and with which default.

    ``description``, ``example`` and ``deprecated`` only document the parameter (OpenAPI).
    Constraints go in the type: ``Annotated[int, msgspec.Meta(ge=1)]``.
    """

    source = ""
    __slots__ = ("default", "alias", "description", "example", "deprecated")

    def __init__(self, default: Any = NO_DEFAULT, *, alias: str | None = None,
                 description: str | None = None, example: Any = NO_DEFAULT,
                 deprecated: bool = False) -> None:
        self.default = default
        self.alias = alias
        self.description = description
        self.example = example
        self.deprecated = deprecated

    def __repr__(self) -> str:
        extra = f", alias={self.alias!r}" if self.alias else ""
        default = "" if self.default is NO_DEFAULT else repr(self.default)
        return f"{type(self).__name__}({default}{extra})"


class Path(Param):
    """A route parameter (``/items/:item_id``); a parameter whose name is in the path is one
    without the marker."""

    source = "path"
    __slots__ = ()


class Query(Param):
    """A query-string parameter; ``alias`` is its name in the URL (``?max-items=3``)."""

    source = "query"
    __slots__ = ()


class Header(Param):
    """A request header; ``x_token`` reads ``x-token`` unless ``alias`` names it."""

    source = "header"
    __slots__ = ()


class Cookie(Param):
    """A cookie sent by the client."""

    source = "cookie"
    __slots__ = ()


class Body(Param):
    """The JSON body, or with ``embed=True`` (or beside another body parameter) the member
    of the body object named after the parameter."""

    source = "body"
    __slots__ = ("embed", "media_type")

    def __init__(self, default: Any = NO_DEFAULT, *, embed: bool = False,
                 alias: str | None = None, description: str | None = None,
                 example: Any = NO_DEFAULT, media_type: str = "application/json") -> None:
        super().__init__(default, alias=alias, description=description, example=example)
        self.embed = embed
        self.media_type = media_type


class Depends:
    """A dependency: the value that ``provider`` gives for this request.

    The provider is a function (sync or ``async``), a generator or an async generator; the
    code after a ``yield`` runs once the answer has been written, also when the handler
    raised or the client went away. It takes typed parameters and dependencies of its own.
    Each provider runs once per request (``use_cache=False``: once per use).
    """

    __slots__ = ("provider", "use_cache")

    def __init__(self, provider: Callable[..., Any], *, use_cache: bool = True) -> None:
        if not callable(provider):
            raise TypeError(f"Depends() takes a callable provider, got {provider!r}")
        self.provider = provider
        self.use_cache = use_cache

    def __repr__(self) -> str:
        return f"Depends({getattr(self.provider, '__qualname__', self.provider)!r})"
