"""The notes JSON API: ``/api/notes`` (list with pagination, create), ``/api/notes/<id>``.

Typed handlers: the parameters say where each input comes from (query, path, JSON body) and
what it must be; corkweb checks them before the handler runs (422 with every failure
otherwise) and describes the API at ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from corkweb import App, NotFound, Response

from .db import Notes
from .settings import Settings

Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Offset = Annotated[int, msgspec.Meta(ge=0)]


class NoteIn(msgspec.Struct):
    # at least one character that is not a space
    text: Annotated[str, msgspec.Meta(pattern=r"\S", max_length=10_000)]


def register(app: App, settings: Settings) -> Notes:
    notes = Notes(app, settings.database_url)
    api = app.router("/api", tags=["notes"])

    @api.get("/notes")
    async def list_notes(limit: Limit = 20, offset: Offset = 0) -> dict:
        """A page of notes, oldest first."""
        return {"items": await notes.list(limit, offset), "limit": limit, "offset": offset}

    @api.post("/notes", status=201)
    async def add_note(note: NoteIn, res: Response) -> dict:
        """Add a note; its URL is in the location header."""
        added = await notes.add(note.text.strip())
        res.write_header("location", f"/api/notes/{added['id']}")
        return added

    @api.get("/notes/:note_id")
    async def get_note(note_id: int) -> dict:
        note = await notes.get(note_id)
        if note is None:
            raise NotFound(f"no note {note_id}")
        return note

    @api.delete("/notes/:note_id", status=204)
    async def delete_note(note_id: int) -> None:
        if not await notes.delete(note_id):
            raise NotFound(f"no note {note_id}")

    return notes
