"""Templates: the Jinja2 engine behind ``res.render`` (and the hook for other engines).

``App(templates="templates")`` builds one :class:`jinja2.Environment` when the app starts, with
autoescaping on for ``.html``, ``.htm``, ``.xml`` and ``.jinja`` files. Any object with a
``render(name, **context) -> str`` method can replace it (``app.template(engine)``), as in
socketify.py.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["Jinja2Templates"]


class Jinja2Templates:
    """A template engine on a folder of Jinja2 templates."""

    def __init__(self, directory: str | os.PathLike[str], *, auto_reload: bool = False,
                 enable_async: bool = False, **env_options: Any) -> None:
        import jinja2

        self.directory = os.fspath(directory)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            autoescape=jinja2.select_autoescape(("html", "htm", "xml", "jinja")),
            auto_reload=auto_reload,
            enable_async=enable_async,
            **env_options,
        )

    def render(self, name: str, **context: Any) -> str:
        """Render template ``name`` with ``context``."""
        return self.env.get_template(name).render(context)

    async def render_async(self, name: str, **context: Any) -> str:
        """Render in Jinja2's async mode (``enable_async=True``)."""
        return await self.env.get_template(name).render_async(context)
