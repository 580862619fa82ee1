"""Remove the files of the options that were turned off (runs inside the new project)."""

from pathlib import Path

PACKAGE = Path("{{ cookiecutter.package }}")
OPTIONAL = {
    "with_websocket": (
        "{{ cookiecutter.with_websocket }}",
        [PACKAGE / "realtime.py", PACKAGE / "static" / "chat.js",
         PACKAGE / "templates" / "chat.html", Path("tests") / "test_websocket.py"],
    ),
    "with_templates": (
        "{{ cookiecutter.with_templates }}",
        [PACKAGE / "templates", PACKAGE / "static" / "chat.js"],
    ),
}
DATABASE_FILES = [PACKAGE / "db.py", PACKAGE / "notes.py", Path("tests") / "test_notes.py"]


def remove(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            remove(child)
        path.rmdir()
    elif path.exists():
        path.unlink()


for _option, (answer, paths) in OPTIONAL.items():
    if answer != "yes":
        for path in paths:
            remove(path)
if "{{ cookiecutter.database }}" == "none":
    for path in DATABASE_FILES:
        remove(path)
