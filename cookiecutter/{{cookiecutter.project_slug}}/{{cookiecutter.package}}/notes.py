"""The notes JSON API: ``/api/notes`` (list with pagination, create), ``/api/notes/<id>``."""

from __future__ import annotations

from corkweb import App, BadRequest, NotFound

from .db import Notes
from .settings import Settings


def _query_int(req, name: str, default: int, low: int, high: int) -> int:
    text = req.get_query(name, None)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def register(app: App, settings: Settings) -> Notes:
    notes = Notes(app, settings.database_url)

    @app.get("/api/notes")
    async def list_notes(res, req):
        limit = _query_int(req, "limit", 20, 1, 100)
        offset = _query_int(req, "offset", 0, 0, 10**9)
        res.end({"items": await notes.list(limit, offset), "limit": limit, "offset": offset})

    @app.post("/api/notes")
    async def add_note(res, req):
        payload = await res.get_json()
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise BadRequest('send {"text": "..."} with a non-empty text')
        note = await notes.add(text.strip())
        res.write_status(201).write_header("location", f"/api/notes/{note['id']}").end(note)

    @app.get("/api/notes/:id<int>")
    async def get_note(res, req):
        note = await notes.get(req.get_parameter("id"))
        if note is None:
            raise NotFound(f"no note {req.get_parameter('id')}")
        res.end(note)

    @app.delete("/api/notes/:id<int>")
    async def delete_note(res, req):
        if not await notes.delete(req.get_parameter("id")):
            raise NotFound(f"no note {req.get_parameter('id')}")
        res.write_status(204).end()

    return notes
