"""Settings for running an app: command-line flags, ``CORKWEB_*`` variables, defaults.

Every option of ``corkweb run`` has one :class:`Option` record here; the command line parser
(``corkweb/cli.py``) and the environment reader are both built from that table, so a flag can
never exist without its variable: ``--workers 4`` is also ``CORKWEB_WORKERS=4``,
``--limit-max-body 1MiB`` is also ``CORKWEB_LIMIT_MAX_BODY=1MiB``. A flag given on the command
line wins over the variable, which wins over the default.

:class:`Settings` is built once at start-up and turned into what the app and the server take:
``Limits`` (``--limit-*`` maps onto its fields), an ``ssl.SSLContext`` and the keyword
arguments of :meth:`corkweb.App.run`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .wire.limits import Limits

__all__ = ["Option", "OPTIONS", "Settings", "ConfigError", "parse_size", "parse_bool",
           "ENV_PREFIX"]

ENV_PREFIX = "CORKWEB_"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the flag and variable."""


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """``"16MiB"``, ``"16M"``, ``"512k"``, ``"1024"`` -> bytes (units are powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 1024, 512k, 16MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r} (use 1/0, true/false, yes/no, on/off)")


def _parse_list(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(os.pathsep)) if part]


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its variable, how to read it, and its help text."""

    name: str  #: attribute of Settings (and of the argparse namespace)
    help: str
    kind: str = "str"  #: str, int, float, bool, size, list
    flag: str = ""  #: defaults to --name-with-dashes
    short: str = ""
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def long(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def convert(self, text: str) -> Any:
        """Parse a value given as text (a flag or a variable)."""
        parsers: dict[str, Callable[[str], Any]] = {
            "str": str, "int": int, "float": float, "bool": parse_bool, "size": parse_size,
            "list": _parse_list,
        }
        parse = parsers[self.kind]
        value = parse(text)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
        return value


def _limit_options() -> list[Option]:
    """``--limit-<field>`` for every field of :class:`Limits`."""
    out = []
    for f in dataclasses.fields(Limits):
        default = f.default
        if isinstance(default, float):
            kind, unit = "float", "seconds"
        elif f.name.startswith("max_") and f.name not in ("max_headers", "max_pipeline",
                                                          "max_connections"):
            kind, unit = "size", "bytes, or 16MiB, 512k"
        elif f.name == "write_high_water":
            kind, unit = "size", "bytes, or 256k"
        else:
            kind, unit = "int", "count"
        out.append(Option(f"limit_{f.name}", f"Limits.{f.name} ({unit}; default {default})",
                          kind=kind, metavar="N"))
    return out


ACCESS_LOG_HELP = ("format of --access-log lines: str.format fields {remote} {method} {path} "
                   "{query} {url} {version} {status} {bytes} {duration} {duration_ms} {time} "
                   "{pid} {user_agent} {referer}")

#: Every option of ``corkweb run``, in help order.
OPTIONS: tuple[Option, ...] = (
    Option("factory", "APP is a callable that returns the app", kind="bool"),
    Option("app_dir", "folder to import APP from (default: the current folder)",
           metavar="DIR"),
    Option("interface", "what APP is: auto (detect), corkweb, asgi (ASGI 3: Starlette, "
           "FastAPI, Litestar, Django...) or wsgi (Flask, Django...); docs/asgi-wsgi.md",
           choices=("auto", "corkweb", "asgi", "wsgi")),
    Option("root_path", "ASGI/WSGI: the prefix a proxy strips (scope root_path, SCRIPT_NAME)",
           metavar="PATH"),
    Option("lifespan", "ASGI lifespan protocol: auto (if the app speaks it), on, off",
           choices=("auto", "on", "off")),
    Option("threads", "WSGI: threads that run the app, per worker (default 40)", kind="int"),
    Option("host", "address to bind (default 127.0.0.1; 0.0.0.0 for every interface)",
           short="-H"),
    Option("port", "port to bind (default 3000; 0 picks a free one)", kind="int", short="-p"),
    Option("uds", "bind a UNIX domain socket at PATH instead of host and port",
           metavar="PATH"),
    Option("backlog", "listen backlog per socket (default 2048)", kind="int"),
    Option("workers", "worker processes (default 1: serve in this process)", kind="int",
           short="-w"),
    Option("reuse_port", "one SO_REUSEPORT socket per worker (default: on where the kernel "
           "balances it, Linux); --no-reuse-port shares one socket", kind="bool"),
    Option("worker_timeout", "seconds a worker's event loop may send no heartbeat before the "
           "supervisor kills it (its stack is logged) and starts a new one (default 30, off "
           "with --reload; 0 turns the check off)", kind="float", metavar="S"),
    Option("reload", "restart the workers when a .py or template file changes", kind="bool"),
    Option("reload_dir", "folders to watch, separated by the OS path separator "
           "(default: the app folder)", kind="list", metavar="DIRS"),
    Option("reload_include", "extra file patterns to watch, separated by the OS path "
           "separator (default *.py and template files)", kind="list", metavar="GLOBS"),
    Option("reload_interval", "seconds between two scans of the watched files (default 0.5)",
           kind="float", metavar="S"),
    Option("ssl_certfile", "TLS certificate chain (PEM)", metavar="FILE"),
    Option("ssl_keyfile", "TLS private key (PEM); defaults to the certificate file",
           metavar="FILE"),
    Option("ssl_keyfile_password", "password of an encrypted TLS key", metavar="PASSWORD"),
    Option("ssl_ca_certs", "CA bundle to verify client certificates against", metavar="FILE"),
    Option("ssl_cert_reqs", "client certificates: none, optional or required (default: "
           "required when --ssl-ca-certs is given)", choices=("none", "optional", "required")),
    Option("ssl_ciphers", "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed)",
           metavar="LIST"),
    Option("access_log", "log one line per response to the corkweb.access logger "
           "(off by default: it costs)", kind="bool"),
    Option("access_log_format", ACCESS_LOG_HELP, metavar="FORMAT"),
    Option("log_level", "level of the corkweb loggers (default info)",
           choices=("critical", "error", "warning", "info", "debug")),
    Option("debug", "debug mode: error pages show the exception, your code and the request; "
           "templates reload (never in production)", kind="bool"),
    *_limit_options(),
)

OPTION_BY_NAME = {opt.name: opt for opt in OPTIONS}


@dataclass
class Settings:
    """What ``corkweb run`` was asked to do, with defaults filled in."""

    app: str | None = None
    factory: bool = False
    app_dir: str = "."
    interface: str = "auto"
    root_path: str = ""
    lifespan: str = "auto"
    threads: int | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    uds: str | None = None
    backlog: int = 2048
    workers: int = 1
    reuse_port: bool | None = None
    worker_timeout: float | None = None  #: None: 30 s, off with --reload (breakpoints)
    reload: bool = False
    reload_dir: list[str] = field(default_factory=list)
    reload_include: list[str] = field(default_factory=list)
    reload_interval: float = 0.5
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str | None = None
    ssl_ciphers: str | None = None
    access_log: bool = False
    access_log_format: str | None = None
    log_level: str = "info"
    debug: bool = False
    #: ``--limit-*`` values given, by Limits field name.
    limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, given: Mapping[str, Any], environ: Mapping[str, str] | None = None,
             ) -> Settings:
        """Merge flags (``given``: option name -> value, ``None`` if absent) over
        ``CORKWEB_*`` variables over defaults. Raises :class:`ConfigError`."""
        environ = os.environ if environ is None else environ
        settings = cls()
        for opt in OPTIONS:
            value = given.get(opt.name)
            if value is None and opt.env in environ:
                try:
                    value = opt.convert(environ[opt.env])
                except ValueError as exc:
                    raise ConfigError(f"{opt.env}={environ[opt.env]!r}: {exc}") from None
            if value is None:
                continue
            if opt.name.startswith("limit_"):
                settings.limits[opt.name[len("limit_"):]] = value
            else:
                setattr(settings, opt.name, value)
        if given.get("app") is not None:
            settings.app = given["app"]
        elif environ.get(ENV_PREFIX + "APP"):
            settings.app = environ[ENV_PREFIX + "APP"]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse contradictory or impossible settings with a clear message."""
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {self.port}")
        if self.worker_timeout is not None and self.worker_timeout < 0:
            raise ConfigError(f"--worker-timeout must be 0 (off) or positive, got "
                              f"{self.worker_timeout}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.reload_interval <= 0:
            raise ConfigError("--reload-interval must be positive")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ConfigError("--ssl-keyfile needs --ssl-certfile")
        if (self.ssl_ca_certs or self.ssl_ciphers or self.ssl_cert_reqs) and not self.ssl_certfile:
            raise ConfigError("the --ssl-* options need --ssl-certfile")
        if self.access_log_format is not None:
            from .server.access_log import AccessFormat

            AccessFormat(self.access_log_format)  # raises ValueError with the bad field
        self.make_limits(Limits())

    def make_limits(self, base: Limits) -> Limits:
        """``base`` with the ``--limit-*`` overrides applied."""
        if not self.limits:
            return base
        try:
            return dataclasses.replace(base, **self.limits)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def ssl_context(self) -> Any:
        """An ``ssl.SSLContext`` for the ``--ssl-*`` options, or ``None`` without TLS."""
        if not self.ssl_certfile:
            return None
        from .server.tls import make_ssl_context

        return make_ssl_context(
            self.ssl_certfile, self.ssl_keyfile, password=self.ssl_keyfile_password,
            ca_certs=self.ssl_ca_certs, cert_reqs=self.ssl_cert_reqs, ciphers=self.ssl_ciphers,
        )

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"

    def watch_dirs(self) -> list[str]:
        """Folders ``--reload`` watches: ``--reload-dir`` or the app folder."""
        return list(self.reload_dir) or [self.app_dir]


# Variables read by the app and its batteries rather than by ``corkweb run``'s flags. Every
# module reads them through env_value/env_flag below: one parse, one place that lists them.
ENV_APP = ENV_PREFIX + "APP"
ENV_APP_DIR = ENV_PREFIX + "APP_DIR"
ENV_FACTORY = ENV_PREFIX + "FACTORY"
ENV_DEBUG = ENV_PREFIX + "DEBUG"
ENV_TEMPLATE = ENV_PREFIX + "TEMPLATE"
ENV_PROXY_PROTOCOL = ENV_PREFIX + "PROXY_PROTOCOL"
ENV_TRUSTED_PROXIES = ENV_PREFIX + "TRUSTED_PROXIES"
ENV_TRUSTED_HOSTS = ENV_PREFIX + "TRUSTED_HOSTS"
ENV_SERVER_NAME = ENV_PREFIX + "SERVER_NAME"
ENV_PUBSUB = ENV_PREFIX + "PUBSUB"
ENV_REDIS = ENV_PREFIX + "REDIS"

#: ``{variable: what it sets}`` for the variables above (the flags' are in OPTIONS).
APP_VARIABLES: dict[str, str] = {
    ENV_PROXY_PROTOCOL: "connections start with a PROXY protocol header (App(proxy_protocol=))",
    ENV_TRUSTED_PROXIES: "proxies whose X-Forwarded-* headers are believed (App(trusted_proxies=))",
    ENV_TRUSTED_HOSTS: "the Host values answered (App(trusted_hosts=))",
    ENV_SERVER_NAME: "the site's origin for absolute URLs (App(server_name=))",
    ENV_PUBSUB: "pub/sub across processes: a Redis URL or 'local' (App(pubsub=))",
    ENV_REDIS: "the Redis server of RedisRateLimit (else a Redis CORKWEB_PUBSUB)",
    ENV_DEBUG: "debug mode (App(debug=), corkweb run --debug)",
    ENV_TEMPLATE: "the project template of corkweb new",
}


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable ``name``, stripped; ``None`` when unset or blank."""
    environ = os.environ if environ is None else environ
    return environ.get(name, "").strip() or None


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """The variable ``name`` as a boolean (unset: off); a bad value is refused by name."""
    text = env_value(name, environ) or ""
    try:
        return parse_bool(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r}: {exc}") from None


def debug_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``CORKWEB_DEBUG`` as a boolean (unset: off); a bad value is refused by name."""
    return env_flag(ENV_DEBUG, environ)


def env_names(options: Iterable[Option] = OPTIONS) -> list[str]:
    """Every ``CORKWEB_*`` variable, for the docs and ``--help``."""
    return [ENV_APP, *(opt.env for opt in options), *APP_VARIABLES]
