"""The CLI without a server: parsing, help examples, settings from env and env files, dry runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.cli import build_parser, main
from deployer.errors import DeployerError
from deployer.render import human_size, human_time, table
from deployer.settings import load_settings

COMMANDS = ["deploy", "ls", "versions", "rm", "rollback", "invoke", "logs", "ps"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_shows_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"], env={})
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"faas {command}" in out


def test_invoke_words_reach_the_command() -> None:
    args = build_parser([]).parse_args(["invoke", "convert", "21", "unit=C", "--async", "--timeout", "5"])
    assert (args.name, args.values, args.async_, args.timeout) == ("convert", ["21", "unit=C"], True, 5.0)


@pytest.mark.parametrize("argv", [
    ["deploy", "f.py", "--timeout", "0"], ["deploy", "f.py", "--memory", "-1"], ["deploy", "f.py", "--retries", "x"],
    ["invoke", "f", "--timeout", "abc"], ["ps", "--state", "sleeping"],
])
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv, env={})
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_settings_from_env_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({"COLONIES_SERVER_HOST": "h", "COLONIES_SERVER_PORT": "5", "COLONIES_COLONY_NAME": "c"}, None)
    assert (s.config.host, s.config.port, s.config.colonyname) == ("h", 5, "c")
    assert s.gateway_url == "http://localhost:8000" and s.executortype == "faas-executor" and s.env_file is None


def test_env_file_values_win_and_default_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".faas").mkdir()
    (tmp_path / ".faas" / "env").write_text("export COLONIES_SERVER_PORT=7\nexport FAAS_GATEWAY_URL='http://gw:9/'\n")
    s = load_settings({"COLONIES_SERVER_PORT": "5", "COLONIES_COLONY_NAME": "c"}, None)
    assert (s.config.port, s.config.colonyname, s.gateway_url) == (7, "c", "http://gw:9")
    assert s.env_file == Path(".faas/env")
    assert load_settings({"COLONIES_SERVER_PORT": "5"}, "").config.port == 5


def test_missing_env_file_and_bad_values_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DeployerError, match="env file not found"):
        load_settings({}, str(tmp_path / "nope"))
    with pytest.raises(DeployerError, match="COLONIES_SERVER_PORT must be a port number"):
        load_settings({"COLONIES_SERVER_PORT": "eighty"}, "")


def test_commands_need_a_colony_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["ls"], env={}) == 1
    assert "COLONIES_COLONY_NAME is not set" in capsys.readouterr().err
    assert main(["ls"], env={"COLONIES_COLONY_NAME": "dev"}) == 1
    assert "COLONIES_PRVKEY is not set" in capsys.readouterr().err
    assert main(["ls"], env={"COLONIES_COLONY_NAME": "dev", "COLONIES_PRVKEY": "xyz"}) == 1
    assert "COLONIES_PRVKEY is not a valid private key" in capsys.readouterr().err


def test_dry_run_needs_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    req = tmp_path / "req.txt"
    req.write_text("# pinned\nrequests==2.32.3  # http\n\nrequests==2.32.3\n")
    assert main(["deploy", str(ROOT / "examples" / "convert.py"), "--dry-run", "--requirements", str(req),
                 "--json"], env={}) == 0
    captured = capsys.readouterr()
    [doc] = json.loads(captured.out)
    assert doc["name"] == "convert" and doc["state"] == "dry run" and doc["serializer"] == "source"
    assert "bundling convert: source (convert stands alone)" in captured.err


@pytest.mark.parametrize(("name", "text", "why"), [
    ("somefile.txt", "hello world\n", "not a Python file: {path} (functions are deployed from a FILE.py)"),
    # Valid Python, but not a .py file: importlib has no loader for it (this was an AssertionError).
    ("funcs.txt", "def f(x):\n    return x\n", "not a Python file: {path} (functions are deployed from a FILE.py)"),
    ("script", "def f(x):\n    return x\n", "not a Python file: {path} (functions are deployed from a FILE.py)"),
    ("missing.py", None, "no such file: {path}"),
    ("adir.py", "", "not a file: {path}"),
])
def test_deploying_what_is_not_a_python_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                name: str, text: str | None, why: str) -> None:
    path = tmp_path / name
    if name == "adir.py":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    for extra in (["--dry-run"], []):  # with or without settings: the file is looked at first
        assert main(["deploy", str(path), *extra], env={}) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"faas: {why.format(path=path)}\n"


def test_missing_requirements_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", str(ROOT / "examples" / "convert.py"), "--dry-run", "--requirements",
                 str(tmp_path / "nope.txt")], env={}) == 1
    assert "cannot read requirements file" in capsys.readouterr().err


def test_pip_options_in_requirements_are_refused_naming_the_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    req = tmp_path / "req.txt"
    req.write_text("requests==2.32.3\n--extra-index-url https://example.invalid/simple\n")
    assert main(["deploy", str(ROOT / "examples" / "convert.py"), "--dry-run", "--requirements", str(req)],
                env={}) == 1
    err = capsys.readouterr().err
    assert f"{req}:2: '--extra-index-url https://example.invalid/simple' is a pip option" in err
    assert "Traceback" not in err


def test_table_aligns_columns() -> None:
    assert table(["a", "long header"], [("x", 1), ("yyyy", None)]) == "A     LONG HEADER\nx     1\nyyyy"


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (5 << 20, "5.0 MiB")])
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def test_human_time() -> None:
    assert human_time("2026-11-22T22:10:00.123Z") == "2026-11-22 22:10:00"
    assert human_time("0001-01-01T00:00:00Z") == "-"
    assert human_time(None) == "-" and human_time("garbage") == "garbage"


def test_builtin_command_list_matches_the_parser() -> None:
    from deployer.cli import BUILTIN_COMMANDS

    parser = build_parser([])
    [sub] = [a for a in parser._actions if a.dest == "command"]
    assert set(sub.choices) == BUILTIN_COMMANDS  # type: ignore[arg-type]


def test_what_the_file_prints_on_import_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "noisy.py"
    path.write_text("print('hello from import')\n\ndef f():\n    return 1\n")
    assert main(["deploy", str(path), "--dry-run", "--json"], env={}) == 0
    captured = capsys.readouterr()
    assert [d["name"] for d in json.loads(captured.out)] == ["f"]
    assert "hello from import" in captured.err


def test_a_file_calling_exit_on_import_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exits.py"
    path.write_text("import sys\nsys.exit(3)\n")
    assert main(["deploy", str(path), "--dry-run"], env={}) == 1
    assert "importing" in capsys.readouterr().err


def test_a_large_pickled_bundle_gets_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.py"
    path.write_text("BLOB = bytes(2 << 20)\n\ndef size():\n    return len(BLOB)\n")
    assert main(["deploy", str(path), "--dry-run"], env={}) == 0
    assert "size: the bundle is 2.7 MiB; a pickled function carries every module-level object" in capsys.readouterr().err


@pytest.mark.parametrize("component", ["server", "executor", "gateway"])
def test_components_are_dispatched_through_entry_points(component: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main([component, "--help"], env={})
    except SystemExit as e:  # argparse in the component exits after printing its help
        code = int(e.code or 0)
    assert code == 0
    assert "usage:" in capsys.readouterr().out
