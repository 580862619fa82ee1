"""File uploads: a form page, ``await res.get_form()`` with limits, and a streaming endpoint
that hashes files as they arrive (nothing is kept in memory or on disk).

Run it:  python examples/uploads/app.py   (then open http://127.0.0.1:3000/)
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from corkweb import App, MultipartReader

UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", tempfile.mkdtemp(prefix="corkweb-uploads-")))

FORM = """<!doctype html>
<title>Upload</title>
<form method="post" action="/upload" enctype="multipart/form-data">
  <input name="title" placeholder="Title">
  <input type="file" name="file" multiple>
  <button>Upload</button>
</form>
"""


def create_app(upload_dir: Path = UPLOAD_DIR) -> App:
    app = App(templates=None)
    upload_dir.mkdir(parents=True, exist_ok=True)

    @app.get("/")
    def home(res, req):
        res.send(FORM, content_type="text/html; charset=utf-8")

    @app.post("/upload")
    async def upload(res, req):
        # Files over 1 MiB are spooled to a temporary file; more than 5 files, a field over
        # 64 KiB or a file over 50 MiB answers 413.
        with await res.get_form(max_files=5, max_field_size=64 * 1024,
                                max_file_size=50 * 1024 * 1024) as form:
            saved = []
            for upload in form.files.get("file", []):
                name = Path(upload.filename).name or "unnamed"  # never trust the client's path
                with open(upload_dir / name, "wb") as out:
                    upload.file.seek(0)
                    shutil.copyfileobj(upload.file, out)
                saved.append({"name": name, "size": upload.size, "type": upload.content_type})
            res.end({"title": form.get("title", ""), "saved": saved})

    @app.post("/hash")
    async def hash_parts(res, req):
        digests = {}
        async for part in MultipartReader(res):
            h = hashlib.sha256()
            async for chunk in part:
                h.update(chunk)
            digests[part.filename or part.name] = h.hexdigest()
        res.end(digests)

    return app


app = create_app()

if __name__ == "__main__":
    print(f"saving uploads to {UPLOAD_DIR}")
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
