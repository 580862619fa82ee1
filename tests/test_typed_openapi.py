"""The OpenAPI 3.1 document: validated with openapi-spec-validator, and its content checked
(typed operations fully, classic ones with path and parameters, components, the 422)."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pydantic
import pytest
from openapi_spec_validator import validate

from corkweb import App, Header, Query
from corkweb.testing import TestClient


class ItemIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []


class ItemOut(msgspec.Struct):
    id: int
    name: str


class Problem(msgspec.Struct):
    detail: str


class Account(pydantic.BaseModel):
    login: str = pydantic.Field(min_length=3)


def make_app() -> App:
    app = App(templates=None, title="Shop", version="2.0", openapi="/openapi.json")

    @app.post("/shops/:shop_id/items", status=201, tags=["items"], summary="Add an item",
              responses={404: Problem, 409: "Name taken"})
    async def create(shop_id: int, item: ItemIn, dry_run: bool = False,
                     x_token: Annotated[str | None, Header()] = None) -> ItemOut:
        """Create an item in a shop."""
        return ItemOut(id=shop_id, name=item.name)

    @app.get("/items", deprecated=True)
    def list_items(limit: Annotated[int, Query(description="at most"),
                                    msgspec.Meta(ge=1, le=50)] = 10) -> list[ItemOut]:
        return []

    @app.post("/accounts")
    def account(acc: Account) -> Account:
        return acc

    @app.get("/hidden", include_in_schema=False)
    def hidden() -> str:
        return "no"

    @app.get("/classic/:user_id<int>/:name")
    def classic(res, req):
        res.end("c")

    api = app.router("/api", tags=["api"])

    @api.get("/ping", operation_id="ping_it")
    def ping() -> str:
        return "pong"

    @app.get("/static/*")
    def wild(res, req):
        res.end("w")

    return app


@pytest.fixture(scope="module")
def document():
    doc = make_app().openapi()
    validate(doc)
    return doc


def test_document_is_valid_openapi_31(document) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Shop", "version": "2.0"}
    assert "/hidden" not in document["paths"] and "/openapi.json" not in document["paths"]
    assert not any("*" in path for path in document["paths"])


def test_typed_operation(document) -> None:
    op = document["paths"]["/shops/{shop_id}/items"]["post"]
    assert op["operationId"] == "create" and op["summary"] == "Add an item"
    assert op["description"] == "Create an item in a shop." and op["tags"] == ["items"]
    params = {(p["in"], p["name"]): p for p in op["parameters"]}
    assert params[("path", "shop_id")] == {"name": "shop_id", "in": "path", "required": True,
                                           "schema": {"type": "integer"}}
    assert params[("query", "dry_run")]["schema"] == {"type": "boolean", "default": False}
    assert params[("query", "dry_run")]["required"] is False
    assert params[("header", "x-token")]["schema"]["anyOf"] == [{"type": "string"},
                                                                {"type": "null"}]
    body = op["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemIn"}
    responses = op["responses"]
    assert responses["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ItemOut"}
    assert responses["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblem"}
    assert responses["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    assert responses["409"] == {"description": "Name taken"}


def test_components_carry_constraints(document) -> None:
    schemas = document["components"]["schemas"]
    item = schemas["ItemIn"]
    assert item["required"] == ["name", "price"]
    assert item["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 20}
    assert item["properties"]["price"] == {"type": "number", "exclusiveMinimum": 0}
    assert schemas["Account"]["properties"]["login"]["minLength"] == 3
    assert "errors" in schemas["ValidationProblem"]["properties"]


def test_query_constraints_deprecation_and_lists(document) -> None:
    op = document["paths"]["/items"]["get"]
    assert op["deprecated"] is True
    assert op["parameters"][0]["schema"] == {"type": "integer", "minimum": 1, "maximum": 50,
                                             "default": 10}
    assert op["parameters"][0]["description"] == "at most"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/ItemOut"}}


def test_classic_operation_has_path_parameters(document) -> None:
    op = document["paths"]["/classic/{user_id}/{name}"]["get"]
    assert op["parameters"] == [
        {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    assert op["responses"] == {"200": {"description": "OK"}}
    assert "422" not in op["responses"]


def test_group_tags_and_operation_id(document) -> None:
    op = document["paths"]["/api/ping"]["get"]
    assert op["tags"] == ["api"] and op["operationId"] == "ping_it"
    assert op["responses"]["200"]["content"]["text/plain"]["schema"] == {"type": "string"}


def test_document_is_served() -> None:
    with TestClient(make_app()) as client:
        r = client.get("/openapi.json")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        doc = r.json()
        validate(doc)
        assert "/shops/{shop_id}/items" in doc["paths"]


def test_no_document_unless_asked() -> None:
    app = App(templates=None)

    @app.get("/x")
    def x() -> str:
        return "x"

    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 404


def test_docs_page_and_assets_are_served_locally() -> None:
    app = App(templates=None, title="Shop <1>", docs="/docs")

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Shop &lt;1&gt;" in page.text and "<script>" not in page.text
        assert "http" not in page.text  # every file comes from this server
        start = client.get("/docs/start.js")
        assert '"/openapi.json"' in start.text
        js = client.get("/docs/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
        assert client.get("/docs/swagger-ui.css").headers["content-type"].startswith("text/css")
        assert "/ping" in client.get("/openapi.json").json()["paths"]
        assert "/docs" not in client.get("/openapi.json").json()["paths"]
