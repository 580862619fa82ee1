"""The ``corkweb`` command, started as a real subprocess, and its settings."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import httpx
import pytest
from cli_process import APPS, CLIProcess, cli_env, run_cli

import corkweb
from corkweb.cli import build_parser, main
from corkweb.config import OPTIONS, ConfigError, Settings, parse_bool, parse_size
from corkweb.scaffold import corkweb_requirement, find_template, render_builtin
from corkweb.wire.limits import Limits

# -- settings -----------------------------------------------------------------------------


def test_sizes_and_booleans_parse() -> None:
    assert parse_size("1024") == 1024
    assert parse_size("16MiB") == 16 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1.5M") == 1536 * 1024
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    assert parse_bool("Yes") and not parse_bool("off")
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool("maybe")


def test_every_option_has_a_flag_and_a_variable() -> None:
    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    flags = {s for action in run._actions for s in action.option_strings}
    for opt in OPTIONS:
        assert opt.long in flags
        assert opt.env == "CORKWEB_" + opt.name.upper()
    limit_flags = {f for f in flags if f.startswith("--limit-")}
    assert limit_flags == {"--limit-" + f.name.replace("_", "-")
                           for f in dataclasses.fields(Limits)}


def test_flags_win_over_variables_which_win_over_defaults() -> None:
    env = {"CORKWEB_PORT": "9000", "CORKWEB_WORKERS": "3", "CORKWEB_RELOAD": "yes",
           "CORKWEB_LIMIT_MAX_BODY": "1MiB", "CORKWEB_APP": "x:app"}
    s = Settings.load({"port": 8001}, env)
    assert (s.port, s.workers, s.reload, s.app) == (8001, 3, True, "x:app")
    assert s.host == "127.0.0.1" and s.backlog == 2048
    limits = s.make_limits(Limits())
    assert limits.max_body == 1024 * 1024 and limits.max_head == Limits().max_head
    assert Settings.load({"reload": False}, env).reload is False


def test_bad_settings_are_refused_with_the_variable_named() -> None:
    with pytest.raises(ConfigError, match="CORKWEB_WORKERS='many'"):
        Settings.load({}, {"CORKWEB_WORKERS": "many"})
    with pytest.raises(ConfigError, match="max_body must be a positive"):
        Settings.load({"limit_max_body": 0}, {})
    with pytest.raises(ConfigError, match="--ssl-keyfile needs --ssl-certfile"):
        Settings.load({"ssl_keyfile": "k.pem"}, {})
    with pytest.raises(ValueError, match="unknown access log field"):
        Settings.load({"access_log_format": "{nope}"}, {})


# -- the command --------------------------------------------------------------------------


def test_console_script_is_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["corkweb"] == "corkweb.cli:main"


def test_version_and_help() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"corkweb {corkweb.__version__}"
    assert main([]) == 2
    done = run_cli("run", "--help")
    assert "--limit-max-body" in done.stdout and "CORKWEB_WORKERS" in done.stdout


def test_run_serves_and_stops_on_sigterm() -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0") as cli:
        cli.ready()
        assert httpx.get(cli.url + "/users/7", timeout=5).json() == {"id": "7"}
        assert cli.stop(signal.SIGTERM) == 0, cli.output
        assert "on_shutdown ran" in cli.output


def test_module_alone_finds_app_and_factory_is_called() -> None:
    with CLIProcess("run", "cli_app", "--port", "0") as cli:
        cli.ready()
        assert httpx.get(cli.url + "/", timeout=5).text == "ok"
        assert cli.stop(signal.SIGINT) == 0, cli.output
    with CLIProcess("run", "cli_app:create_app", "--factory", "--port", "0") as cli:
        cli.ready()
        assert httpx.get(cli.url + "/", timeout=5).text == "from factory"
        assert cli.stop() == 0


def test_everything_from_environment_variables() -> None:
    env = cli_env(CORKWEB_APP="cli_app:app", CORKWEB_PORT="0", CORKWEB_LIMIT_MAX_BODY="10")
    with CLIProcess("run", env=env) as cli:
        cli.ready()
        r = httpx.post(cli.url + "/", content=b"x" * 100, timeout=5)
        assert r.status_code == 413
        assert cli.stop() == 0


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    with CLIProcess("run", "cli_app:app", "--uds", str(path)) as cli:
        cli.wait_for(f"corkweb listening on unix:{path}")
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            assert client.get("http://app/").text == "ok"
        assert cli.stop() == 0


@pytest.mark.parametrize(("args", "message"), [
    (("run", "no_such_module:app"), "cannot import 'no_such_module'"),
    (("run", "cli_app:nothing"), "has no attribute 'nothing'"),
    (("run", "cli_app:create_app"), "a factory? corkweb run cli_app:create_app --factory"),
    (("run",), "no app given"),
    (("run", "cli_app:app", "--workers", "0"), "--workers must be at least 1"),
    (("run", "cli_app:app", "--ssl-certfile", "/nonexistent.pem"), "not found"),
])
def test_mistakes_exit_1_with_a_clear_message(args: tuple[str, ...], message: str,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("CORKWEB_")]:
        monkeypatch.delenv(name)
    assert main([*args, "--app-dir", str(APPS)] if len(args) > 1 else list(args)) == 1
    err = capsys.readouterr().err
    assert err.startswith("corkweb: error: ") and message in err


def test_routes_prints_the_route_table() -> None:
    done = run_cli("routes", "cli_app:app")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["METHOD", "PATH", "HANDLER", "NAME"]
    assert any(line.split()[:3] == ["GET", "/users/:id", "cli_app.user"]
               and line.split()[3] == "user" for line in lines[1:])


# -- corkweb new --------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(errors="replace")
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_renders_the_scaffold_offline(tmp_path: Path) -> None:
    done = run_cli("new", "Pet Shop", "-o", str(tmp_path), "--renderer", "builtin",
                   "--no-websocket")
    assert done.returncode == 0, done.stderr
    project = tmp_path / "pet-shop"
    files = _tree(project)
    assert "pet_shop/app.py" in files and "pyproject.toml" in files
    assert not any("realtime" in f or "websocket" in f for f in files)
    assert not any("{{" in name for name in files)
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")  # rendered Python is valid Python
    again = run_cli("new", "Pet Shop", "-o", str(tmp_path), "--renderer", "builtin")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_builtin_renderer_matches_cookiecutter(tmp_path: Path) -> None:
    pytest.importorskip("cookiecutter")
    context = {"project_name": "Same Thing", "with_websocket": "yes", "with_templates": "yes",
               "corkweb_requirement": corkweb_requirement()}
    built = render_builtin(find_template(), context, tmp_path / "builtin")
    done = run_cli("new", "Same Thing", "-o", str(tmp_path / "cc"), "--renderer",
                   "cookiecutter")
    assert done.returncode == 0, done.stderr
    assert _tree(built) == _tree(tmp_path / "cc" / "same-thing")


def test_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli("new", "x", "--template", str(tmp_path))
    assert done.returncode == 1 and "no corkweb project template" in done.stderr
