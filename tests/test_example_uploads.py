"""examples/uploads: form uploads saved to disk, streaming hashes, limits."""

from __future__ import annotations

import hashlib
import os

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture
def client(tmp_path):
    app = load_example("uploads").create_app(tmp_path)
    with TestClient(app) as client:
        client.dir = tmp_path
        yield client


def test_form_page(client) -> None:
    r = client.get("/")
    assert 'enctype="multipart/form-data"' in r.text


def test_upload_saves_files(client) -> None:
    blob = os.urandom(2 * 1024 * 1024)  # spooled to disk on the way
    r = client.post("/upload", data={"title": "holiday"},
                    files=[("file", ("../../etc/evil.bin", blob, "application/octet-stream")),
                           ("file", ("note.txt", b"hi", "text/plain"))])
    assert r.status_code == 200
    assert r.json() == {"title": "holiday", "saved": [
        {"name": "evil.bin", "size": len(blob), "type": "application/octet-stream"},
        {"name": "note.txt", "size": 2, "type": "text/plain"}]}
    assert (client.dir / "evil.bin").read_bytes() == blob  # the client's path was dropped


def test_too_many_files_is_413(client) -> None:
    files = [("file", (f"f{i}.txt", b"x", "text/plain")) for i in range(6)]
    assert client.post("/upload", files=files).status_code == 413


def test_not_multipart_is_415(client) -> None:
    assert client.post("/upload", json={"a": 1}).status_code == 415


def test_streaming_hash(client) -> None:
    blob = os.urandom(3 * 1024 * 1024)
    r = client.post("/hash", files={"f": ("big.bin", blob)})
    assert r.json() == {"big.bin": hashlib.sha256(blob).hexdigest()}
