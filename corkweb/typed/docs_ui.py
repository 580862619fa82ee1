"""The interactive documentation page (Swagger UI), served entirely by corkweb.

``App(docs="/docs")`` serves a small HTML page at ``/docs`` and the Swagger UI script and
stylesheet under ``/docs/`` from the files of the ``swagger-ui-bundle-v2`` package (Swagger UI
5, which reads OpenAPI 3.1; ``pip install corkweb[docs]``). Nothing is fetched from another
host, so the page works offline and behind a strict Content Security Policy: the page has no
inline script, its start-up code is one more small file served here.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from typing import Any

__all__ = ["assets_folder", "register_docs"]

_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")
_CACHE = "public, max-age=86400"


def assets_folder() -> str:
    """The folder holding Swagger UI's files; a clear error when the package is missing."""
    try:
        import swagger_ui_bundle
    except ImportError:
        raise RuntimeError("App(docs=...) serves Swagger UI from the swagger-ui-bundle-v2 "
                           "package: pip install 'corkweb[docs]'") from None
    folder = os.fspath(str(swagger_ui_bundle.swagger_ui_path))
    version = os.path.basename(folder).rpartition("-")[2]
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 5:
        raise RuntimeError(f"Swagger UI {version} in {folder} cannot read OpenAPI 3.1; "
                           "install swagger-ui-bundle-v2 (Swagger UI 5) instead of "
                           "swagger-ui-bundle")
    return folder


def _page(title: str, prefix: str) -> bytes:
    name = html.escape(title)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{name} - API documentation</title>\n"
        f"<link rel=\"stylesheet\" href=\"{prefix}/swagger-ui.css\">\n"
        "</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
        f"<script src=\"{prefix}/swagger-ui-bundle.js\"></script>\n"
        f"<script src=\"{prefix}/start.js\"></script>\n</body>\n</html>\n"
    ).encode()


def _start_script(openapi_url: str) -> bytes:
    return (
        "window.ui = SwaggerUIBundle({\n"
        f"  url: {json.dumps(openapi_url)},\n"
        "  dom_id: \"#swagger-ui\",\n"
        "  deepLinking: true,\n"
        "  validatorUrl: null,\n"
        "  presets: [SwaggerUIBundle.presets.apis],\n"
        "  layout: \"BaseLayout\"\n"
        "});\n"
    ).encode()


def register_docs(app: Any, docs_url: str, openapi_url: str, title: str) -> None:
    """Register the page and its files on ``app`` (left out of the OpenAPI document)."""
    from ..static import send_file

    folder = assets_folder()
    prefix = docs_url.rstrip("/")
    page = _page(title, prefix)
    start = _start_script(openapi_url)

    def docs_page(res: Any, req: Any) -> None:
        res.send(page, content_type="text/html; charset=utf-8")

    def docs_start(res: Any, req: Any) -> None:
        res.send(start, content_type="text/javascript; charset=utf-8",
                 headers={"cache-control": "no-cache"})

    def asset(name: str) -> Callable[[Any, Any], Any]:
        path = os.path.join(folder, name)

        def docs_asset(res: Any, req: Any) -> Any:
            return send_file(res, req, path, cache_control=_CACHE)

        return docs_asset

    app.get(docs_url, docs_page, include_in_schema=False)
    app.get(prefix + "/start.js", docs_start, include_in_schema=False)
    for name in _ASSETS:
        app.get(f"{prefix}/{name}", asset(name), include_in_schema=False)
