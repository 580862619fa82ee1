"""socketify.py's command line on corkweb: ``python -m corkweb module:function [OPTIONS]``.

``function(app)`` configures an :class:`~corkweb.App` that the command makes (socketify's
"socketify interface"), then the command listens and runs it::

    python -m corkweb main:run --port 8000 --workers 4 --ws main:ws_behaviour

``module:attr`` naming an ``App`` instance serves it as ``corkweb run`` would. socketify's
options are read with socketify's spelling (``-h`` is ``--host`` here, as there; ``--help``
prints the help). ``__main__.py`` sends a first argument of the form ``module:attr`` here and
everything else to ``corkweb``'s own commands (``corkweb/cli.py``). Each option and its corkweb
meaning is listed in ``docs/porting-from-socketify.md``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "is_socketify_form"]

log = logging.getLogger("corkweb.error")

_COMMANDS = ("run", "routes", "new")


def is_socketify_form(argv: Sequence[str]) -> bool:
    """``module:attr`` first (not a corkweb command): socketify's command line."""
    return bool(argv) and ":" in argv[0] and not argv[0].startswith("-") and (
        argv[0] not in _COMMANDS)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m corkweb", add_help=False,
        description="Run a socketify.py-style app: module:function, where function(app) "
                    "configures the App this command makes.")
    add = parser.add_argument
    add("target", metavar="APP", help="module:function (or module:app, an App instance)")
    add("--help", action="help", help="show this help and exit")
    add("--host", "-h", default="127.0.0.1", help="bind to this host [127.0.0.1]")
    add("--port", "-p", type=int, default=8000, help="bind to this port [8000]")
    add("--workers", "-w", type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1") or 1),
        help="worker processes [WEB_CONCURRENCY or 1]")
    add("--uds", default=None, help="bind to a UNIX socket instead of host and port")
    add("--ws", default="auto",
        help="module:behaviour — a WebSocket behaviour dict served on /* ; auto or none: "
             "only the app's own app.ws routes")
    add("--ws-max-size", type=int, default=16 * 1024 * 1024)
    add("--ws-auto-ping", type=_bool, default=True)
    add("--ws-idle-timeout", type=int, default=20)
    add("--ws-reset-idle-on-send", type=_bool, default=True)
    add("--ws-per-message-deflate", type=_bool, default=False)
    add("--ws-max-lifetime", type=int, default=0, help="minutes; 0 = no limit")
    add("--ws-max-backpressure", type=int, default=16 * 1024 * 1024)
    add("--ws-close-on-backpressure-limit", type=_bool, default=False)
    add("--lifespan", choices=("auto", "on", "off"), default="auto")
    add("--interface", choices=("auto", "socketify"), default="auto",
        help="socketify only: ASGI and WSGI apps are hosted by corkweb's own adapters")
    add("--disable-listen-log", type=_bool, nargs="?", const=True, default=False)
    add("--version", "-v", action="store_true", help="print the version and exit")
    add("--ssl-keyfile", default=None)
    add("--ssl-certfile", default=None)
    add("--ssl-keyfile-password", default=None)
    add("--ssl-ca-certs", default=None)
    add("--ssl-ciphers", default=None)
    # socketify's object-pool sizes: corkweb has no pools; accepted so scripts keep working.
    add("--req-res-factory-maxitems", type=int, default=0, help=argparse.SUPPRESS)
    add("--ws-factory-maxitems", type=int, default=0, help=argparse.SUPPRESS)
    add("--task-factory-maxitems", type=int, default=100_000, help=argparse.SUPPRESS)
    return parser


class CLIError(Exception):
    """Printed as ``corkweb: error: ...``; exit status 1."""


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise CLIError(f"{target!r}: expected module:attribute")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CLIError(f"cannot import {module_name!r} (from {os.getcwd()})") from exc
        raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _positional_count(fn: Any) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return -1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def build_app(args: argparse.Namespace) -> tuple[Any, Any]:
    """The App to serve and its TLS settings, from the parsed command line."""
    from .app import App
    from .compat import AppOptions

    target = _load(args.target)
    ssl_options = None
    if args.ssl_keyfile or args.ssl_certfile:
        ssl_options = AppOptions(
            key_file_name=args.ssl_keyfile, cert_file_name=args.ssl_certfile or args.ssl_keyfile,
            passphrase=args.ssl_keyfile_password, ca_file_name=args.ssl_ca_certs,
            ssl_ciphers=args.ssl_ciphers)
    if isinstance(target, App):
        app = target
    elif callable(target) and _positional_count(target) == 1:
        app = App(ssl_options, lifespan=args.lifespan != "off")
        target(app)
    elif callable(target) and _positional_count(target) in (2, 3):
        raise CLIError(f"{args.target!r} looks like a WSGI or ASGI app; this command runs "
                       f"socketify-style apps, def run(app) (see docs/porting-from-socketify.md)")
    else:
        raise CLIError(f"{args.target!r} must be a function taking the App, def run(app), "
                       f"or an App; got {type(target).__name__}")
    if args.ws not in ("auto", "none"):
        behaviour = _load(args.ws)
        if not isinstance(behaviour, dict):
            raise CLIError(f"--ws {args.ws!r}: expected a WebSocket behaviour dict, got "
                           f"{type(behaviour).__name__}")
        settings = {
            "compression": 1 if args.ws_per_message_deflate else 0,
            "max_payload_length": args.ws_max_size,
            "idle_timeout": args.ws_idle_timeout,
            "send_pings_automatically": args.ws_auto_ping,
            "reset_idle_timeout_on_send": args.ws_reset_idle_on_send,
            "max_lifetime": args.ws_max_lifetime,
            "max_backpressure": args.ws_max_backpressure,
            "close_on_backpressure_limit": args.ws_close_on_backpressure_limit,
        }
        app.ws("/*", {**behaviour, **settings})
    return app, ssl_options


def main(argv: Sequence[str]) -> int:
    """Run socketify's command line; returns the exit status."""
    from . import __version__

    args = build_parser().parse_args(list(argv))
    if args.version:
        print(f"corkweb {__version__} (socketify.py command line)")
        return 0
    if args.workers < 1:
        print("corkweb: error: --workers must be at least 1", file=sys.stderr)
        return 1
    from .compat import AppListenOptions

    try:
        app, ssl_options = build_app(args)
    except (CLIError, ValueError, TypeError) as exc:
        print(f"corkweb: error: {exc}", file=sys.stderr)
        return 1
    scheme = "https" if ssl_options else "http"

    def listen_log(config: AppListenOptions) -> None:
        if args.disable_listen_log:
            return
        if config.domain:
            print(f"Listening on {config.domain} {scheme}://localhost now", flush=True)
        else:
            print(f"Listening on {scheme}://{config.host}:{config.port} now", flush=True)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    where = AppListenOptions(domain=args.uds) if args.uds else AppListenOptions(
        port=args.port, host=args.host)
    app.listen(where, listen_log)
    ssl_context = ssl_options.ssl_context() if ssl_options is not None else None
    app.run(workers=args.workers, ssl=ssl_context)
    return 0
