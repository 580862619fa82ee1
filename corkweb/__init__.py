"""corkweb: a corked HTTP/1.1 + WebSocket web framework for Python.

Every send a piece of business logic makes on one connection leaves in one write syscall.
See ``docs/corking.md`` for the contract.
"""

from __future__ import annotations

from .app import App, RouteGroup
from .asgi import HostedApp
from .body import BodyBytes
from .compat import AppListenOptions, AppOptions, Loop, MiddlewareRouter, sendfile
from .errors import (
    AppFrozenError,
    BadRequest,
    CorkwebError,
    Forbidden,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RequestTimeout,
    RequestValidationError,
    ServiceUnavailable,
    Unauthorized,
)
from .middleware import middleware
from .middleware.auth import APIKeyAuth, BasicAuth, BearerAuth, JWTAuth
from .middleware.compression import Compression
from .middleware.cors import CORS
from .middleware.csrf import CSRF
from .middleware.metrics import Metrics
from .middleware.ratelimit import RateLimit, RedisRateLimit
from .middleware.request_id import RequestID
from .middleware.security import SecurityHeaders
from .middleware.sessions import Session, Sessions, get_session
from .middleware.tracing import Tracing
from .multipart import FormData, MultipartReader, Part, UploadFile
from .postgres import Postgres
from .redirects import same_site_path
from .request import Request
from .response import ClientDisconnected, Response
from .sse import Event, EventStream, stream_events
from .static import StaticFiles
from .typed import Body, Cookie, Depends, Header, Path, Query
from .websocket import CompressOptions, OpCode, SendStatus, WebSocket
from .wire.limits import Limits

__version__ = "0.1.0"

__all__ = [
    "App",
    "RouteGroup",
    "HostedApp",
    "Request",
    "Response",
    "Limits",
    "WebSocket",
    "OpCode",
    "SendStatus",
    "CompressOptions",
    "middleware",
    "CorkwebError",
    "HTTPError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "ProtocolError",
    "AppFrozenError",
    "ClientDisconnected",
    "__version__",
    # batteries: files, forms, server-sent events, middleware
    "StaticFiles",
    "FormData",
    "UploadFile",
    "MultipartReader",
    "Part",
    "EventStream",
    "Event",
    "stream_events",
    "CORS",
    "Compression",
    "Sessions",
    "Session",
    "get_session",
    # databases (docs/databases.md)
    "Postgres",
    "same_site_path",
    # typed handlers
    "Body",
    "Query",
    "Header",
    "Cookie",
    "Path",
    "Depends",
    "RequestValidationError",
    # production batteries: CSRF, rate limits, authentication, metrics, tracing
    "CSRF",
    "RequestID",
    "SecurityHeaders",
    "RateLimit",
    "RedisRateLimit",
    "BasicAuth",
    "BearerAuth",
    "APIKeyAuth",
    "JWTAuth",
    "Metrics",
    "Tracing",
    # socketify.py's remaining names (docs/porting-from-socketify.md)
    "AppListenOptions",
    "AppOptions",
    "MiddlewareRouter",
    "Loop",
    "sendfile",
    "BodyBytes",
]
