"""Templates: the Jinja2 engine behind ``res.render`` (and the hook for other engines).

``App(templates="templates")`` builds one :class:`Jinja2Templates` — one
:class:`jinja2.Environment` on that folder — with autoescaping on for ``.html``, ``.htm``,
``.xml`` and ``.jinja`` files. In production compiled templates are cached and never checked
again (no ``stat`` per render); in debug mode Jinja reloads a template whose file changed.

Any object with a ``render(name, **context) -> str`` method can replace it
(``app.template(engine)``), as in socketify.py; ``render_string(source, **context)`` and
``render_async`` are used when the engine has them.

This module also knows how to describe a template error (:func:`template_error_info`: which
template, which line) and renders corkweb's own pages — the error page and the debug page —
from the ``corkweb/templates`` folder of the package (:func:`builtin_page`).
"""

from __future__ import annotations

import linecache
import os
import sys
from collections import ChainMap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple

__all__ = [
    "Jinja2Templates",
    "TemplateErrorInfo",
    "builtin_page",
    "template_error_info",
]

#: ``App(templates=...)``'s default: optional, unlike a folder named explicitly.
DEFAULT_FOLDER = "templates"

#: File extensions rendered with autoescaping on.
AUTOESCAPE_EXTENSIONS = ("html", "htm", "xml", "jinja")

#: Compiled ``render_string`` sources kept per engine (oldest dropped first).
STRING_CACHE_SIZE = 128

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


class Jinja2Templates:
    """A template engine on one folder (or a list of folders) of Jinja2 templates.

    ``auto_reload`` re-reads a template whose file changed (debug mode); ``enable_async``
    selects Jinja2's async mode, where ``res.render`` returns an awaitable. Other keyword
    arguments go to :class:`jinja2.Environment` (``undefined=jinja2.StrictUndefined``,
    ``trim_blocks=True``, …).
    """

    def __init__(self, directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 *, auto_reload: bool = False, enable_async: bool = False,
                 **env_options: Any) -> None:
        import jinja2

        if isinstance(directory, (str, os.PathLike)):
            self.directories = [os.fspath(directory)]
        else:
            self.directories = [os.fspath(d) for d in directory]
        env_options.setdefault("autoescape", jinja2.select_autoescape(AUTOESCAPE_EXTENSIONS))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directories),
            auto_reload=auto_reload,
            enable_async=enable_async,
            **env_options,
        )
        fast = fast_template_class()
        if fast is not None:
            self.env.template_class = fast
        self._strings: dict[str, Any] = {}
        # PERF: in production a loaded template is kept in a plain dict: 0.05 µs per render
        # instead of 0.75 µs for Environment.get_template (its LRU cache takes a lock).
        # Jinja2 does not reload a template without auto_reload either.
        self._loaded: dict[str, Any] | None = None if auto_reload else {}

    @classmethod
    def from_env(cls, env: Any) -> Jinja2Templates:
        """Wrap an :class:`jinja2.Environment` built elsewhere (``app.template(env)``)."""
        engine = cls.__new__(cls)
        engine.directories = []
        engine.env = env
        engine._strings = {}
        engine._loaded = None if env.auto_reload else {}
        fast = fast_template_class()
        if fast is not None and env.template_class is jinja2_template_class():
            env.template_class = fast
        return engine

    def __repr__(self) -> str:
        return f"<Jinja2Templates {self.directories!r} async={self.is_async}>"

    @property
    def is_async(self) -> bool:
        """True when the environment is in Jinja2's async mode."""
        return bool(self.env.is_async)

    def get_template(self, name: str) -> Any:
        """The compiled template ``name`` (loaded once in production)."""
        loaded = self._loaded
        if loaded is None:
            return self.env.get_template(name)
        template = loaded.get(name)
        if template is None:
            template = loaded[name] = self.env.get_template(name)
        return template

    def clear_cache(self) -> None:
        """Forget the compiled templates (they are loaded again on next use)."""
        if self._loaded is not None:
            self._loaded.clear()
        self._strings.clear()
        if self.env.cache is not None:
            self.env.cache.clear()

    def render(self, name: str, /, **context: Any) -> str:
        """Render template ``name`` with ``context``."""
        return str(self.get_template(name).render(context))

    def render_context(self, name: str, context: dict[str, Any]) -> str:
        """``render`` with the context as a dict: what ``res.render`` calls."""
        return str(self.get_template(name).render(context))

    async def render_async(self, name: str, /, **context: Any) -> str:
        """Render in Jinja2's async mode (``enable_async=True``)."""
        return str(await self.get_template(name).render_async(context))

    async def render_context_async(self, name: str, context: dict[str, Any]) -> str:
        """``render_async`` with the context as a dict."""
        return str(await self.get_template(name).render_async(context))

    def from_string(self, source: str) -> Any:
        """The compiled template of ``source``, cached (compiling costs milliseconds)."""
        template = self._strings.get(source)
        if template is None:
            template = self.env.from_string(source)
            if len(self._strings) >= STRING_CACHE_SIZE:
                del self._strings[next(iter(self._strings))]
            self._strings[source] = template
        return template

    def render_string(self, source: str, /, **context: Any) -> str:
        """Render the template text ``source`` (autoescaped, like an ``.html`` file)."""
        return str(self.from_string(source).render(context))

    async def render_string_async(self, source: str, /, **context: Any) -> str:
        """``render_string`` in Jinja2's async mode."""
        return str(await self.from_string(source).render_async(context))


# -- how the app finds and calls its engine -------------------------------------------------------

def resolve_folders(templates: Any, caller_file: str | None) -> list[str] | None:
    """The template folders of ``App(templates=...)`` as absolute paths, or None.

    A relative folder is looked up next to the module that created the App (``caller_file``),
    then in the current directory. The default, ``"templates"``, may be missing (None: no
    templates); a folder named explicitly must exist (``FileNotFoundError``).
    """
    if templates is None:
        return None
    given = [templates] if isinstance(templates, (str, os.PathLike)) else list(templates)
    found = []
    for item in given:
        folder = str(os.fspath(item))
        candidates = [folder] if os.path.isabs(folder) else [
            *([os.path.join(os.path.dirname(os.path.abspath(caller_file)), folder)]
              if caller_file else []),
            os.path.abspath(folder),
        ]
        for candidate in candidates:
            if os.path.isdir(candidate):
                found.append(candidate)
                break
        else:
            if templates == DEFAULT_FOLDER:
                return None
            raise FileNotFoundError(f"App(templates=...): no folder {folder!r} (looked in "
                                    f"{' and '.join(map(repr, candidates))})")
    return found


class Renderers(NamedTuple):
    """What ``ResponseOptions`` holds for ``res.render`` and ``res.render_string``.

    ``render(name, context)`` and ``render_string(source, context)`` return ``str``, or an
    awaitable of it when ``is_async``.
    """

    render: Callable[[str, dict[str, Any]], Any]
    render_string: Callable[[str, dict[str, Any]], Any] | None
    is_async: bool


def make_renderers(engine: Any, helpers: dict[str, Any]) -> Renderers:
    """Bind ``engine`` for the responses: called once, when the app freezes.

    A Jinja2 engine gets ``helpers`` (``url_for``, ``static_url``) as environment globals,
    which costs nothing per render; any other engine receives them in each context.
    """
    if isinstance(engine, Jinja2Templates):
        for key, value in helpers.items():
            engine.env.globals.setdefault(key, value)
        if engine.is_async:
            return Renderers(engine.render_context_async, _string_async(engine), True)
        return Renderers(engine.render_context, _string_sync(engine), False)

    is_async = bool(getattr(engine, "is_async", False))
    render = engine.render_async if is_async else engine.render

    def render_other(name: str, context: dict[str, Any]) -> Any:
        return render(name, **{**helpers, **context})

    render_string = None
    engine_string = getattr(engine, "render_string_async" if is_async else "render_string", None)
    if callable(engine_string):
        def render_string(source: str, context: dict[str, Any]) -> Any:
            return engine_string(source, **{**helpers, **context})

    return Renderers(render_other, render_string, is_async)


def _string_sync(engine: Jinja2Templates) -> Callable[[str, dict[str, Any]], str]:
    def render_string(source: str, context: dict[str, Any]) -> str:
        return str(engine.from_string(source).render(context))

    return render_string


def _string_async(engine: Jinja2Templates) -> Callable[[str, dict[str, Any]], Any]:
    async def render_string(source: str, context: dict[str, Any]) -> str:
        return str(await engine.from_string(source).render_async(context))

    return render_string


# -- faster autoescaping -------------------------------------------------------------------------

def _make_fast_template() -> Any:
    """A :class:`jinja2.Template` that renders the same bytes as Jinja2's, faster.

    1. Output escaping. With autoescape on, Jinja2 compiles ``{{ x }}`` to ``yield escape(x)``;
       markupsafe's ``escape`` builds a ``Markup`` object through two Python-level calls, and
       that ``Markup`` is only ever joined into the page. Each compiled template's ``escape``
       is replaced by one that returns the same characters as a plain ``str`` (markupsafe's own
       C escaper does the work). Only output expressions use this name: the ``|e`` filter,
       ``Markup(...)``, ``~`` and macros keep markupsafe's functions.
    2. The render context. Each render copies the template's globals, a ``ChainMap`` of the
       template's own globals (almost always empty) over the environment's, twice, through
       ``ChainMap``'s Python-level iteration; when the template's own are empty the
       environment's dict itself is passed — the same keys and values, still live.

    Returns None (stock templates are used) if markupsafe or Jinja2 lack what this needs.
    """
    try:
        import jinja2
        import markupsafe
        from jinja2.runtime import new_context
        from markupsafe import _escape_inner
    except ImportError:  # pragma: no cover - older markupsafe: keep the stock escape
        return None
    stock_escape = markupsafe.escape

    def escape_output(value: Any) -> str:
        if type(value) is str:
            return _escape_inner(value)
        if hasattr(value, "__html__"):
            html = value.__html__()
            return html if isinstance(html, str) else str(html)
        return _escape_inner(str(value))

    def fast(template: Any) -> Any:
        namespace = getattr(template.root_render_func, "__globals__", None)
        if namespace is not None and namespace.get("escape") is stock_escape:
            namespace["escape"] = escape_output
        return template

    class FastTemplate(jinja2.Template):
        """A Jinja2 template with faster output escaping and context creation."""

        # PERF: the benchmark page (20 rows, 60 escaped values) renders in 34.6 µs instead
        # of 65.9 µs: markupsafe.escape + Markup.__new__ cost ~0.5 µs per value.
        @classmethod
        def from_code(cls, environment: Any, code: Any, globals: Any,
                      uptodate: Callable[[], bool] | None = None) -> Any:
            return fast(super().from_code(environment, code, globals, uptodate))

        @classmethod
        def from_module_dict(cls, environment: Any, module_dict: Any, globals: Any) -> Any:
            return fast(super().from_module_dict(environment, module_dict, globals))

        # PERF: dict(ChainMap) and set(ChainMap) in jinja2.runtime.new_context, through
        # ChainMap's Python-level __iter__ and __getitem__, cost 7.5 µs per render of the
        # benchmark page (36.0 -> 28.5 µs); with a dict they run in C.
        def new_context(self, vars: dict[str, Any] | None = None, shared: bool = False,
                        locals: Any = None) -> Any:
            globals = self.globals
            if globals.__class__ is ChainMap:
                maps = globals.maps
                if len(maps) == 2 and not maps[0]:
                    globals = maps[1]
            return new_context(self.environment, self.name, self.blocks, vars, shared,
                               globals, locals)

    FastTemplate.escape_output = staticmethod(escape_output)  # type: ignore[attr-defined]
    return FastTemplate


_fast_template: list[Any] = []


def jinja2_template_class() -> Any:
    """:class:`jinja2.Template` (imported on first use)."""
    import jinja2

    return jinja2.Template


def fast_template_class() -> Any:
    """The :class:`jinja2.Template` subclass with the faster output escaping (or None)."""
    if not _fast_template:
        _fast_template.append(_make_fast_template())
    return _fast_template[0]


# -- template errors -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateErrorInfo:
    """Where a template error is: the template file (or name) and the line, if known."""

    #: The template the error is in (its file as Jinja2 knows it, else its name).
    template: str | None
    #: The 1-based line in that template.
    lineno: int | None
    #: What went wrong, in one line.
    message: str
    #: For a missing template: the name that was not found.
    missing: str | None = None
    #: The template text when Jinja2 had it in memory (syntax errors).
    source: str | None = None

    def location(self) -> str:
        """``'page.html' line 3``, ``'page.html'``, or ``''`` when no template is known."""
        if not self.template:
            return ""
        return f"{self.template!r} line {self.lineno}" if self.lineno else repr(self.template)

    def summary(self) -> str:
        """One line for the log: what went wrong and where."""
        where = self.location()
        if self.missing is not None:
            text = f"template {self.missing!r} not found"
            return f"{text} (needed by {where})" if where else text
        return f"{where}: {self.message}" if where else self.message

    def source_lines(self, around: int = 3) -> list[tuple[int, str, bool]]:
        """The lines around the error: ``(lineno, text, is_error_line)``.

        Reads the template file when the source is not in memory: call it only to show
        a debug page, never on a production path.
        """
        if not self.lineno:
            return []
        if self.source is not None:
            lines = self.source.splitlines()
        elif self.template and os.path.isfile(self.template):
            lines = [line.rstrip("\r\n") for line in linecache.getlines(self.template)]
        else:
            return []
        first = max(1, self.lineno - around)
        last = min(len(lines), self.lineno + around)
        return [(n, lines[n - 1], n == self.lineno) for n in range(first, last + 1)]


def template_error_info(exc: BaseException) -> TemplateErrorInfo | None:
    """Describe ``exc`` if it is a template error or was raised while rendering a template.

    Costs nothing when Jinja2 was never imported. No file is read.
    """
    jinja2 = sys.modules.get("jinja2")
    if jinja2 is None:
        return None
    template, lineno = _innermost_template_frame(exc.__traceback__)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateErrorInfo(
            template=exc.filename or exc.name or template, lineno=exc.lineno or lineno,
            message=f"{type(exc).__name__}: {exc.message}", source=exc.source,
        )
    if isinstance(exc, jinja2.TemplateNotFound):
        missing = exc.name if isinstance(exc.name, str) else str(exc.message)
        return TemplateErrorInfo(
            template=template, lineno=lineno, missing=missing,
            message=f"{type(exc).__name__}: template {missing!r} not found",
        )
    if template is None:
        return None
    return TemplateErrorInfo(template=template, lineno=lineno,
                             message=f"{type(exc).__name__}: {exc}")


def _innermost_template_frame(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """The template file and line of the deepest template frame in ``tb``.

    Jinja2 rewrites the traceback of an error raised while rendering so that template code
    appears as frames of the template file at the template's line (their globals hold
    ``__jinja_exception__``); a frame it did not rewrite still runs compiled template code
    (its globals hold ``__jinja_template__``) and maps back through the template's debug info.
    """
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        frame_globals = tb.tb_frame.f_globals
        if "__jinja_exception__" in frame_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        else:
            template = frame_globals.get("__jinja_template__")
            if template is not None:
                found = (template.filename or template.name,
                         template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return found


# -- corkweb's own pages -------------------------------------------------------------------------

_builtin_env: Any = None


def builtin_env() -> Any:
    """The Jinja2 environment of the package's own templates (error and debug pages)."""
    global _builtin_env
    if _builtin_env is None:
        import jinja2

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(BUILTIN_DIR), autoescape=True,
                                 auto_reload=False, undefined=jinja2.StrictUndefined)
        fast = fast_template_class()
        if fast is not None:
            env.template_class = fast
        _builtin_env = env
    return _builtin_env


def load_builtin_pages() -> None:
    """Compile the built-in pages now (at start-up), so that no error answer reads a file."""
    env = builtin_env()
    for name in ("error.html", "debug.html"):
        env.get_template(name)


def builtin_page(name: str, **context: Any) -> str:
    """Render ``corkweb/templates/<name>`` (``error.html``, ``debug.html``)."""
    return str(builtin_env().get_template(name).render(context))
