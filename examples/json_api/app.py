"""A JSON API: a to-do list in memory, under a route group at /api.

Run it:  python examples/json_api/app.py   (then: curl http://127.0.0.1:3000/api/todos)

Try:
    curl -X POST -d '{"title": "write docs"}' http://127.0.0.1:3000/api/todos
    curl -X PATCH -d '{"done": true}' http://127.0.0.1:3000/api/todos/1
    curl -X DELETE http://127.0.0.1:3000/api/todos/1
"""

import os
from dataclasses import asdict, dataclass

from corkweb import App, BadRequest, NotFound


@dataclass
class Todo:
    id: int
    title: str
    done: bool = False


class TodoStore:
    """The data: a dict in memory (see examples/database for SQLite)."""

    def __init__(self):
        self.items: dict[int, Todo] = {}
        self.next_id = 1

    def add(self, title: str) -> Todo:
        todo = Todo(self.next_id, title)
        self.items[todo.id] = todo
        self.next_id += 1
        return todo

    def get(self, todo_id: int) -> Todo:
        try:
            return self.items[todo_id]
        except KeyError:
            raise NotFound(f"no to-do with id {todo_id}") from None


def check_title(payload) -> str:
    """Validation: a 400 with a message the client can act on."""
    if not isinstance(payload, dict):
        raise BadRequest("send a JSON object")
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BadRequest('"title" must be a non-empty string')
    return title.strip()


def create_app() -> App:
    app = App(templates=None)
    store = TodoStore()
    api = app.router("/api")

    @api.get("/todos")
    def list_todos(res, req):
        todos = list(store.items.values())
        if req.get_query("done") is not None:
            wanted = req.get_query("done") == "true"
            todos = [t for t in todos if t.done is wanted]
        res.end(todos)  # a list of dataclasses -> JSON through orjson

    @api.post("/todos")
    async def create_todo(res, req):
        payload = await res.get_json()  # invalid JSON -> 400 before we get here
        todo = store.add(check_title(payload))
        res.write_status(201).write_header("location", f"/api/todos/{todo.id}").end(todo)

    @api.get("/todos/:id<int>")
    def get_todo(res, req):
        res.end(store.get(req.get_parameter("id")))

    @api.patch("/todos/:id<int>")
    async def update_todo(res, req):
        todo = store.get(req.get_parameter("id"))
        payload = await res.get_json()
        if not isinstance(payload, dict):
            raise BadRequest("send a JSON object")
        if "title" in payload:
            todo.title = check_title(payload)
        if "done" in payload:
            if not isinstance(payload["done"], bool):
                raise BadRequest('"done" must be true or false')
            todo.done = payload["done"]
        res.end(asdict(todo))

    @api.delete("/todos/:id<int>")
    def delete_todo(res, req):
        store.items.pop(store.get(req.get_parameter("id")).id)
        res.write_status(204).end()

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
