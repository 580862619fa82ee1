"""The ``corkweb`` command (also ``python -m corkweb``).

    corkweb run module:app [--workers N] [--reload] [--ssl-certfile F] ...
    corkweb routes module:app
    corkweb new NAME
    corkweb --version

Every ``run`` option also comes from a ``CORKWEB_*`` variable (``corkweb/config.py`` holds the
table); ``docs/cli.md`` lists them. With ``--workers`` above 1 or ``--reload`` this process
becomes the supervisor and does not import the app: each worker is this same command started
again (``corkweb/server/workers.py``), so a syntax error under ``--reload`` is reported by a
worker and fixed by saving again, and the supervisor never holds stale code.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import (
    ENV_APP,
    ENV_APP_DIR,
    ENV_FACTORY,
    ENV_TEMPLATE,
    OPTIONS,
    ConfigError,
    Option,
    Settings,
    env_flag,
    env_value,
)
from .server.serve import listen_error, listen_url

__all__ = ["main", "load_app", "build_parser"]

log = logging.getLogger("corkweb.error")


class CLIError(Exception):
    """A mistake in what was asked: printed as ``corkweb: error: ...``, exit status 1."""


# -- finding the app ------------------------------------------------------------------------


def load_app(target: str, *, factory: bool = False, app_dir: str = ".",
             interface: str = "corkweb", **hosting: Any) -> Any:
    """Import ``module:attr`` (``attr`` may be dotted), or ``module`` and find its app.

    ``module`` alone looks for an attribute named ``app``, else the one ``App`` instance in
    the module. ``factory=True`` calls the attribute (no arguments) to get the app. The module
    may also be a ``.py`` path, relative or absolute (``../site/app.py:app``): it is imported
    from its folder, or from the top of the package holding it. ``interface`` other than
    ``"corkweb"`` (``auto``, ``asgi``, ``wsgi``) wraps an ASGI or WSGI application in a
    :class:`corkweb.asgi.HostedApp` (``hosting``: its options).
    """
    from .app import App

    module_name, _, attr = target.partition(":")
    if module_name.endswith(".py"):
        module_name, app_dir = _module_for_path(module_name)
    app_dir = os.path.abspath(app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module = _import_user_module(module_name, app_dir)
    _check_not_shadowed(module, module_name, app_dir)
    if attr:
        obj: Any = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise CLIError(f"module {module_name!r} has no attribute {attr!r}") from None
    elif isinstance(getattr(module, "app", None), App) or (
            (factory or interface != "corkweb") and hasattr(module, "app")):
        obj = module.app
    else:
        found = [name for name, value in vars(module).items() if isinstance(value, App)]
        if len(found) != 1:
            if not found:
                hint = _factory_hint(module, module_name)
                raise CLIError(f"module {module_name!r} has no App instance" + (
                    hint or f": create one as `app = App()` or name one as {module_name}:NAME"))
            raise CLIError(f"module {module_name!r} has several apps ({', '.join(found)}): "
                           f"name one as {module_name}:NAME")
        obj = getattr(module, found[0])
    if factory:
        if not callable(obj):
            raise CLIError(f"--factory: {target!r} is not callable")
        obj = obj()
        if inspect.isawaitable(obj):
            raise CLIError(f"--factory: {target!r} returned an awaitable; it must return an App")
    if interface != "corkweb" and not isinstance(obj, App):
        from .asgi import HostedApp

        try:
            return HostedApp(obj, interface=interface, **hosting)
        except ValueError as exc:
            hint = (f" (a factory? corkweb run {target} --factory)"
                    if callable(obj) and not factory else "")
            raise CLIError(f"{target!r}: {exc}{hint}") from None
    if not isinstance(obj, App):
        hint = f" (a factory? corkweb run {target} --factory)" if callable(obj) else ""
        raise CLIError(f"{target!r} is {type(obj).__name__}, not a corkweb App{hint}")
    return obj


class AppImportError(CLIError):
    """The user's module raised while being imported; ``details`` is the traceback of the
    user's code (the command's own frames and importlib's are left out)."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def _module_for_path(path: str) -> tuple[str, str]:
    """``(dotted module name, folder to import it from)`` for a ``.py`` file: the file's own
    folder, or above the packages (folders with ``__init__.py``) that hold it, so its relative
    imports work."""
    file = Path(path).resolve()
    if not file.is_file():
        raise CLIError(f"no such file: {path}")
    parts = [] if file.stem == "__init__" else [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), str(folder)


def _import_user_module(module_name: str, app_dir: str) -> Any:
    from .importing import RunDuringImport, importing

    try:
        with importing(module_name):
            return importlib.import_module(module_name)
    except RunDuringImport as exc:
        raise CLIError(str(exc)) from None
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            raise CLIError(f"cannot import {module_name!r} (looked in {app_dir} and "
                           f"sys.path); use --app-dir or check the name") from None
        raise AppImportError(_import_failure(module_name, exc), _user_traceback(exc)) from None
    except Exception as exc:
        raise AppImportError(_import_failure(module_name, exc), _user_traceback(exc)) from None


def _check_not_shadowed(module: Any, module_name: str, app_dir: str) -> None:
    """A file named like a module Python already has (``json.py``, ``email.py``) is not
    what ``import`` finds: say so rather than "has no App instance"."""
    top = module_name.split(".")[0]
    mine = [Path(app_dir) / f"{top}.py", Path(app_dir) / top / "__init__.py"]
    found = getattr(sys.modules.get(top), "__file__", None)
    if found is None or not any(path.is_file() for path in mine):
        return
    if any(Path(found).resolve() == path.resolve() for path in mine if path.is_file()):
        return
    raise CLIError(f"{module_name!r} imported {found}, not your {top}.py: a module named like "
                   f"one Python already has (the standard library's or an installed package) "
                   f"cannot be imported by that name; rename {top}.py, e.g. to {top}_app.py")


def _import_failure(module_name: str, exc: BaseException) -> str:
    message = f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        message += (f" (is {exc.name.split('.')[0]!r} installed for {sys.executable}? "
                    f"pip install it there)")
    return message


_CLI_FILES = (os.path.abspath(__file__), os.path.dirname(importlib.__file__) + os.sep)


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside this command and importlib (for a syntax
    error, which has no frame of the user's, only the place in the file)."""
    if isinstance(exc, SyntaxError) and exc.filename and not exc.filename.startswith(
            _CLI_FILES):
        return "".join(traceback.format_exception_only(type(exc), exc))
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen") and not os.path.abspath(filename).startswith(
                _CLI_FILES):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _factory_hint(module: Any, module_name: str) -> str:
    """``: it has a factory, ...`` when the module defines a function that looks like one."""
    names = [name for name, value in vars(module).items()
             if inspect.isfunction(value) and value.__module__ == module.__name__
             and (name in ("create_app", "make_app", "app_factory", "build_app")
                  or name.startswith(("create_app", "make_app")))]
    if not names:
        return ""
    name = names[0]
    return (f"; it has a factory: corkweb run {module_name}:{name} --factory")


# -- the parser -----------------------------------------------------------------------------


def _typed(opt: Option) -> Any:
    def convert(text: str) -> Any:
        return opt.convert(text)

    convert.__name__ = opt.kind  # argparse names the type in its error message
    return convert


def _add_option(parser: argparse.ArgumentParser, opt: Option) -> None:
    names = [opt.long] + ([opt.short] if opt.short else [])
    help_text = f"{opt.help} [{opt.env}]"
    if opt.kind == "bool":
        parser.add_argument(*names, dest=opt.name, action=argparse.BooleanOptionalAction,
                            default=None, help=help_text)
    else:
        parser.add_argument(*names, dest=opt.name, type=_typed(opt), default=None,
                            metavar=opt.metavar or opt.name.split("_")[-1].upper(),
                            help=help_text)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="corkweb", description="Run, inspect and create corkweb apps.",
        epilog="Every `run` flag also reads a CORKWEB_* variable, e.g. CORKWEB_WORKERS=4.",
    )
    parser.add_argument("--version", action="version", version=f"corkweb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve an app", description=(
        "Serve APP (module:attr, or module to find `app`). Flags override CORKWEB_* "
        "variables, which override defaults."))
    run.add_argument("app", nargs="?", help="module:attr or module [CORKWEB_APP]")
    groups = {
        "limit_": run.add_argument_group("limits (corkweb.Limits fields)"),
        "ssl_": run.add_argument_group("TLS"),
        "reload": run.add_argument_group("reload"),
        "access_log": run.add_argument_group("logging"),
        "log_": run.add_argument_group("logging"),
    }
    for opt in OPTIONS:
        group = next((g for prefix, g in groups.items() if opt.name.startswith(prefix)), run)
        _add_option(group, opt)  # type: ignore[arg-type]

    routes = sub.add_parser("routes", help="print the route table of an app")
    routes.add_argument("app", nargs="?", help="module:attr or module [CORKWEB_APP]")
    routes.add_argument("--factory", action="store_true", default=None)
    routes.add_argument("--app-dir", dest="app_dir", default=None)

    new = sub.add_parser("new", help="create a project from the corkweb scaffold")
    new.add_argument("name", help="the project's name, e.g. 'My Shop' or my-shop")
    new.add_argument("-o", "--output-dir", default=".", help="where to create it (default .)")
    new.add_argument("--author", default=None)
    new.add_argument("--websocket", action=argparse.BooleanOptionalAction, default=True,
                     help="include the WebSocket chat example (default: yes)")
    new.add_argument("--templates", action=argparse.BooleanOptionalAction, default=True,
                     help="include Jinja2 templates (default: yes)")
    new.add_argument("--database", choices=("none", "sqlite", "postgres"), default="none",
                     help="a notes API on a database: sqlite or postgres (asyncpg) (default: "
                     "none)")
    new.add_argument("--template", default=None, metavar="DIR",
                     help="a cookiecutter template folder to use instead [CORKWEB_TEMPLATE]")
    new.add_argument("--renderer", choices=("auto", "cookiecutter", "builtin"), default="auto",
                     help="auto: cookiecutter if installed, else the built-in Jinja2 one")
    return parser


# -- commands -------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .server import workers
    from .server.access_log import configure_logging

    given = {opt.name: getattr(args, opt.name) for opt in OPTIONS}
    given["app"] = args.app
    settings = Settings.load(given)
    if not settings.app:
        raise CLIError("no app given: corkweb run module:app (or set CORKWEB_APP)"
                       + _app_here(settings.app_dir))
    configure_logging(settings.log_level, settings.access_log)
    ssl_context = settings.ssl_context()  # a bad certificate fails here, before any fork
    listen: dict[str, Any] = ({"uds": settings.uds} if settings.uds else
                              {"host": settings.host, "port": settings.port})
    is_worker = workers.ENV_FDS in os.environ
    if not is_worker and (settings.workers > 1 or settings.reload):
        def ready(addresses: list[Any]) -> None:
            for address in addresses:
                log.info("corkweb listening on %s",
                         listen_url(address, settings.scheme == "https"))

        limits = settings.make_limits(_default_limits())
        try:
            return workers.supervise(
                [listen], workers=settings.workers, reuse_port=settings.reuse_port,
                backlog=settings.backlog, shutdown_timeout=limits.drain_timeout + 5.0,
                reload=settings.reload,
                reload_dirs=settings.watch_dirs() if settings.reload else (),
                reload_patterns=settings.reload_include, reload_interval=settings.reload_interval,
                on_ready=ready, worker_timeout=settings.worker_timeout,
            )
        except OSError as exc:  # the supervisor binds before forking: a taken port, ...
            message = listen_error(exc, [listen])
            if message is None:
                raise
            raise CLIError(message.removeprefix("corkweb: error: ")) from None
    app = load_app(settings.app, factory=settings.factory, app_dir=settings.app_dir,
                   interface=settings.interface, root_path=settings.root_path,
                   lifespan=settings.lifespan, threads=settings.threads)
    app.limits = settings.make_limits(app.limits)
    if settings.debug:
        app.debug = True
    access: bool | str = (settings.access_log_format or True) if settings.access_log else False
    from .asgi.lifespan import LifespanFailure

    try:
        app.run(ssl=ssl_context, access_log=access, backlog=settings.backlog, **listen)
    except LifespanFailure as exc:
        print(f"corkweb: error: {exc}", file=sys.stderr)
        return 3
    return 0


def _app_here(folder: str) -> str:
    """``; app.py is here: corkweb run app`` when a likely app module sits in ``folder``."""
    for name in ("app", "main", "server"):
        if (Path(folder) / f"{name}.py").is_file():
            return f"; {name}.py is here: corkweb run {name}"
    return ""


def _default_limits() -> Any:
    from .wire.limits import Limits

    return Limits()


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_routes(args: argparse.Namespace) -> int:
    target = args.app or env_value(ENV_APP)
    if not target:
        raise CLIError("no app given: corkweb routes module:app")
    factory = bool(args.factory) if args.factory is not None else env_flag(ENV_FACTORY)
    app = load_app(target, factory=factory, app_dir=args.app_dir or env_value(ENV_APP_DIR) or ".")
    rows = [("METHOD", "PATH", "HANDLER", "NAME")]
    for method, path, handler, name in app.routes:
        qual = getattr(handler, "__qualname__", None) or type(handler).__qualname__
        module = getattr(handler, "__module__", None) or ""
        rows.append((method, path, f"{module}.{qual}" if module else qual, name or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
              f"{row[3]}".rstrip())
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import (
        ProjectNameError,
        build_context,
        check_package_name,
        corkweb_requirement,
        find_template,
        render_project,
    )

    template = find_template(args.template or env_value(ENV_TEMPLATE))
    context = {
        "project_name": args.name,
        "with_websocket": "yes" if args.websocket else "no",
        "with_templates": "yes" if args.templates else "no",
        "database": args.database,
    }
    if args.author:
        context["author"] = args.author
    full = build_context(template, context)
    if "corkweb_requirement" in full:
        context["corkweb_requirement"] = corkweb_requirement()
    try:
        check_package_name(str(full.get("package", full.get("project_slug", ""))), args.name)
    except ProjectNameError as exc:
        raise CLIError(str(exc)) from None
    # Checked here, before either renderer runs, so the answer is the same one line.
    target = Path(args.output_dir) / str(full.get("project_slug", args.name))
    if target.exists():
        raise CLIError(f"{target} already exists: choose another name, or another folder "
                       f"with -o DIR")
    project = render_project(template, context, args.output_dir, renderer=args.renderer)
    print(f"created {project}")
    print(f"next: cd {project} && pip install -e '.[test]' && pytest")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``corkweb`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    commands = {"run": cmd_run, "routes": cmd_routes, "new": cmd_new}
    try:
        return commands[args.command](args)
    except AppImportError as exc:
        print(exc.details + f"corkweb: error: {exc}", file=sys.stderr)
        return 1
    except (CLIError, ConfigError, FileNotFoundError, FileExistsError) as exc:
        print(f"corkweb: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno is None:
            raise
        print(f"corkweb: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
