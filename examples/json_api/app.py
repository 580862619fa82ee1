"""A JSON API: a to-do list in memory, under a route group at /api, with typed handlers.

The handlers declare their inputs (a path id, a query filter, a JSON body) and return what
they answer; corkweb converts and validates the inputs with msgspec (422 with every failure
otherwise) and publishes the OpenAPI document at /openapi.json with a page at /docs.

Run it:  python examples/json_api/app.py   (then: curl http://127.0.0.1:3000/api/todos)

Try:
    curl -X POST -H 'content-type: application/json' -d '{"title": "write docs"}' \
        http://127.0.0.1:3000/api/todos
    curl -X PATCH -H 'content-type: application/json' -d '{"done": true}' \
        http://127.0.0.1:3000/api/todos/1
    curl -X DELETE http://127.0.0.1:3000/api/todos/1
    open http://127.0.0.1:3000/docs     (pip install "corkweb[docs]")
"""

import os
from typing import Annotated

import msgspec

from corkweb import App, NotFound, Response

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Todo(msgspec.Struct):
    id: int
    title: str
    done: bool = False


class NewTodo(msgspec.Struct):
    title: Title


class TodoChange(msgspec.Struct, omit_defaults=True):
    title: Title | None = None
    done: bool | None = None


class Problem(msgspec.Struct):
    status: int
    error: str
    message: str


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


def create_app() -> App:
    app = App(templates=None, title="To-do API", version="1.0",
              openapi="/openapi.json", docs=_docs_url())
    store = TodoStore()
    api = app.router("/api", tags=["todos"])
    missing = {404: Problem}

    @api.get("/todos")
    def list_todos(done: bool | None = None) -> list[Todo]:
        """The to-dos, all of them or only those done (or not)."""
        todos = list(store.items.values())
        if done is not None:
            todos = [t for t in todos if t.done is done]
        return todos

    @api.post("/todos", status=201)
    def create_todo(todo: NewTodo, res: Response) -> Todo:
        """Add a to-do; its URL is in the location header."""
        created = store.add(todo.title.strip())
        res.write_header("location", f"/api/todos/{created.id}")
        return created

    @api.get("/todos/:todo_id", responses=missing)
    def get_todo(todo_id: int) -> Todo:
        return store.get(todo_id)

    @api.patch("/todos/:todo_id", responses=missing)
    def update_todo(todo_id: int, change: TodoChange) -> Todo:
        """Change the title, mark done or not done."""
        todo = store.get(todo_id)
        if change.title is not None:
            todo.title = change.title.strip()
        if change.done is not None:
            todo.done = change.done
        return todo

    @api.delete("/todos/:todo_id", status=204, responses=missing)
    def delete_todo(todo_id: int) -> None:
        store.items.pop(store.get(todo_id).id)

    return app


def _docs_url() -> str | None:
    """The documentation page needs Swagger UI's files (pip install "corkweb[docs]")."""
    try:
        import swagger_ui_bundle  # noqa: F401
    except ImportError:
        return None
    return "/docs"


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
