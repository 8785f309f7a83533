"""The `faas` CLI end to end against a real server and a real S3 (weed): deploy → ls → versions →
invoke → logs → ps → rollback → rm, the tutorial's bare source files, and every error case."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from sdk import Colonies, id_from_prvkey, new_prvkey
from tests.harness.ports import free_port
from tests.harness.s3 import S3Server
from tests.harness.server import DEV_COLONY

from .conftest import EXAMPLES, Faas, rows, write
from .stand_in_executor import StandInExecutor


def test_deploy_ls_versions_invoke_rollback_rm(faas: Faas, tmp_path: Path, executor: StandInExecutor,
                                               client: Colonies, s3_server: S3Server) -> None:
    first = faas("deploy", EXAMPLES / "convert.py")
    assert first.code == 0, first.err
    [[name, version1, state, serializer, url]] = rows(first.out)
    assert (name, state, serializer, url) == ("convert", "new", "source", "http://gw.example:8000/function/convert")
    assert "uploading convert" in first.err

    again = faas("deploy", EXAMPLES / "convert.py")
    assert again.code == 0 and rows(again.out)[0][1:3] == [version1, "unchanged"]

    changed = write(tmp_path, (EXAMPLES / "convert.py").read_text().replace("+ 32", "+ 32.0 + 0"), "convert.py")
    second = faas("deploy", changed, "--timeout", "30")
    [[_, version2, state2, *_]] = rows(second.out)
    assert state2 == "updated" and version2 != version1

    listing = faas("ls", "--json").json()
    assert isinstance(listing, list) and [(f["name"], f["version"], f["revisions"]) for f in listing] == [
        ("convert", version2, 2)]
    assert listing[0]["limits"]["timeout"] == 30
    table = faas("ls")
    assert rows(table.out)[0][0:3] == ["convert", version2, "source"] and rows(table.out)[0][-1] == "2"

    versions = faas("versions", "convert")
    assert [r[0] for r in rows(versions.out)] == [version2, version1]
    assert rows(versions.out)[0][-1] == "*"

    assert faas("invoke", "convert", "21").out.strip() == "69.8"
    assert faas("invoke", "convert", "celsius=100").out.strip() == "212.0"
    doc = faas("invoke", "convert", "0", "--json").json()
    assert isinstance(doc, dict) and doc["result"] == 32.0 and doc["state"] == "successful" and doc["processid"]

    rolled = faas("rollback", "convert", version1[:6])
    assert rolled.code == 0 and rows(rolled.out)[0][1:3] == [version1, "rolled back"]
    assert [r[0] for r in rows(faas("versions", "convert").out)] == [version1, version2, version1]
    assert faas("invoke", "convert", "21").code == 0
    assert faas("rollback", "convert", version1).out.count("unchanged") == 1

    refs = [f.ref.s3object for f in client.get_file(DEV_COLONY, "/faas", "convert", False)]
    assert len(refs) == 3
    removed = faas("rm", "convert")
    assert removed.code == 0 and "removed convert (3 revisions)" in removed.out
    assert faas("ls", "--json").json() == []
    s3 = boto3.client("s3", endpoint_url=s3_server.url, aws_access_key_id=s3_server.access_key,
                      aws_secret_access_key=s3_server.secret_key, region_name=s3_server.region)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_server.bucket).get("Contents", [])}
    assert not keys & {r.object for r in refs}
    gone = faas("rm", "convert")
    assert gone.code == 1 and "no function 'convert' is deployed" in gone.err


def test_cloudpickled_functions_run(faas: Faas, executor: StandInExecutor) -> None:
    deployed = faas("deploy", EXAMPLES / "closure_example.py", "--json")
    assert deployed.code == 0, deployed.err
    assert {d["name"]: d["serializer"] for d in deployed.json()} == {  # type: ignore[union-attr]
        "describe": "cloudpickle", "make_scaler": "source", "triple": "cloudpickle", "scale_all": "cloudpickle"}
    assert json.loads(faas("invoke", "describe", "21").out) == {"celsius": 21, "fahrenheit": 69.8, "kelvin": 294.15}
    assert json.loads(faas("invoke", "triple", "7").out) == 21
    assert json.loads(faas("invoke", "scale_all", "[1, 2]", "factor=3").out) == [3, 6]
    assert faas("deploy", EXAMPLES / "closure_example.py").out.count("unchanged") == 4


@pytest.mark.parametrize("text", [
    "import math\n\ndef f(x):\n    return math.sqrt(x)\n",                                    # stdlib import
    "def _half(x):\n    return x / 2\n\ndef f(x):\n    return _half(x) * 4\n",                   # helper
    "class Box:\n    def __init__(self, x):\n        self.x = x\n\ndef f(x):\n    return Box(x).x * 2\n",  # class
    "def make(k):\n    def g(x):\n        return x * k\n    return g\n\nf = make(2)\n",         # closure
])
def test_each_kind_of_function_deploys_and_runs(faas: Faas, tmp_path: Path, executor: StandInExecutor,
                                                text: str) -> None:
    assert faas("deploy", write(tmp_path, text), "--function", "f").code == 0
    assert json.loads(faas("invoke", "f", "16").out) in (4.0, 32, 32.0)


def test_a_bare_tutorial_source_file_is_a_function(faas: Faas, client: Colonies, executor: StandInExecutor) -> None:
    source = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"
    client.upload_bytes(DEV_COLONY, "/faas", "convert", source.encode())
    [[name, _, serializer, *_]] = rows(faas("ls").out)
    assert (name, serializer) == ("convert", "source (bare)")
    assert faas("invoke", "convert", "21").out.strip() == "69.8"


def test_an_unreadable_file_does_not_hide_the_others(faas: Faas, client: Colonies, tmp_path: Path) -> None:
    faas("deploy", EXAMPLES / "convert.py")
    client.upload_bytes(DEV_COLONY, "/faas", "broken", b"\xff\xfe not text")
    ran = faas("ls")
    assert ran.code == 0
    assert [r[:3] for r in rows(ran.out)] == [["broken", "-", "unreadable"], ["convert", rows(ran.out)[1][1], "source"]]
    assert "broken: /faas/broken is neither a bundle nor a Python source file" in ran.err
    fixed = faas("deploy", write(tmp_path, "def broken():\n    return 'fixed'\n"))
    assert fixed.code == 0 and rows(fixed.out)[0][2] == "updated"
    assert [r[2] for r in rows(faas("ls").out)] == ["source", "source"]
    history = rows(faas("versions", "broken").out)
    assert [(r[0], r[2]) for r in history] == [(rows(fixed.out)[0][1], "source"), ("-", "unreadable")]


def test_failure_prints_the_remote_traceback(faas: Faas, tmp_path: Path, executor: StandInExecutor) -> None:
    faas("deploy", write(tmp_path, "def boom(x):\n    return 1 / x\n"))
    ran = faas("invoke", "boom", "0")
    assert ran.code == 1 and ran.out == ""
    assert "boom failed (process " in ran.err
    assert "Traceback" in ran.err and "ZeroDivisionError: division by zero" in ran.err
    doc = faas("invoke", "boom", "0", "--json")
    assert doc.code == 1 and "ZeroDivisionError" in doc.json()["error"]  # type: ignore[index]


def test_logs_ps_and_async(faas: Faas, tmp_path: Path, executor: StandInExecutor) -> None:
    faas("deploy", write(tmp_path, "def chatty(n):\n    for i in range(n):\n        print('line', i)\n    return n\n"))
    pid = faas("invoke", "chatty", "3", "--async").out.strip()
    assert len(pid) == 64
    followed = faas("logs", pid, "-f")  # returns once the process has ended, then says how
    assert followed.code == 0 and followed.out == "line 0\nline 1\nline 2\n3\n"
    assert faas("logs", pid).out == "line 0\nline 1\nline 2\n"  # without -f: the lines only
    done = faas("ps", "--state", "successful", "--json").json()
    assert isinstance(done, list) and pid in [p["processid"] for p in done]
    assert [p["function"] for p in done if p["processid"] == pid] == ["chatty"]
    table = faas("ps")
    assert any(r[0] == pid and r[2] == "successful" for r in rows(table.out))


def test_logs_follow_ends_with_the_error_of_a_failed_call(faas: Faas, tmp_path: Path,
                                                          executor: StandInExecutor) -> None:
    faas("deploy", write(tmp_path, "def shaky(n):\n    print('trying', n)\n    return {'ok': 1 / n}\n"))
    failed = faas("invoke", "shaky", "0", "--async").out.strip()
    ran = faas("logs", failed, "-f")
    assert ran.code == 1 and ran.out == "trying 0\n"
    assert f"faas: shaky failed (process {failed}):" in ran.err
    assert "ZeroDivisionError: division by zero" in ran.err
    ok = faas("invoke", "shaky", "2", "--async").out.strip()
    done = faas("logs", ok, "-f")
    assert done.code == 0 and done.out == 'trying 2\n{\n  "ok": 0.5\n}\n'  # as `faas invoke` prints it
    assert done.out.removeprefix("trying 2\n") == faas("invoke", "shaky", "2").out


def test_invoke_converts_words_by_the_recorded_annotations(faas: Faas, tmp_path: Path,
                                                           executor: StandInExecutor) -> None:
    faas("deploy", write(tmp_path, """
        def show(code: str, x: float, n=1, *, flag: bool = False, tags: list[str] | None = None):
            return [code, type(code).__name__, x, type(x).__name__, n, flag, tags]

        def plain(code, x):
            return [code, type(code).__name__, x, type(x).__name__]
    """))
    assert json.loads(faas("invoke", "show", "007", "21").out) == ["007", "str", 21.0, "float", 1, False, None]
    assert json.loads(faas("invoke", "show", "code=007", "x=21", "flag=yes", 'tags=["a"]').out) == [
        "007", "str", 21.0, "float", 1, True, ["a"]]
    # No annotations: JSON when valid, else text, as before.
    assert json.loads(faas("invoke", "plain", "007", "21").out) == ["007", "str", 21, "int"]
    submitted = faas("ps", "--json").json()
    bad = faas("invoke", "show", "x", "warm")
    assert bad.code == 1 and bad.err == "faas: parameter 'x': cannot convert 'warm' to float\n"
    assert faas("ps", "--json").json() == submitted  # refused before anything was submitted


def test_invoke_errors_before_submitting(faas: Faas, tmp_path: Path) -> None:
    unknown = faas("invoke", "nope", "1")
    assert unknown.code == 1 and "no function 'nope' is deployed" in unknown.err
    faas("deploy", EXAMPLES / "convert.py")
    bad = faas("invoke", "convert", "1", "2")
    assert bad.code == 1 and "convert(celsius): too many positional arguments" in bad.err
    assert faas("ps", "--json").json() == []


def test_invoke_timeout_names_the_process(faas: Faas) -> None:
    faas("deploy", EXAMPLES / "convert.py")
    ran = faas("invoke", "convert", "21", "--timeout", "0.2")  # no executor: it stays queued
    assert ran.code == 1 and "no result after 0.2 s; process " in ran.err and "faas logs" in ran.err
    assert "no executor of type 'faas-executor' is registered in colony 'dev'" in ran.err


def test_unreachable_server_is_named(faas: Faas) -> None:
    port = free_port()
    ran = faas("deploy", EXAMPLES / "convert.py", COLONIES_SERVER_PORT=str(port))
    assert ran.code == 1
    assert f"cannot reach the Colonies server at http://127.0.0.1:{port}" in ran.err


def test_unreachable_s3_is_named_and_nothing_is_deployed(faas: Faas) -> None:
    port = free_port()
    ran = faas("deploy", EXAMPLES / "closure_example.py", AWS_S3_ENDPOINT=f"127.0.0.1:{port}")
    assert ran.code == 1
    assert f"cannot reach the S3 store at http://127.0.0.1:{port}" in ran.err
    assert faas("ls", "--json").json() == []


def test_missing_s3_settings_are_named(faas: Faas) -> None:
    ran = faas("deploy", EXAMPLES / "convert.py", AWS_S3_ENDPOINT="")
    assert ran.code == 1 and "no S3 store configured: set AWS_S3_ENDPOINT" in ran.err
    assert faas("ls", "--json").json() == []


def test_key_that_is_not_a_member_is_named(faas: Faas) -> None:
    stranger = new_prvkey()
    ran = faas("deploy", EXAMPLES / "convert.py", COLONIES_PRVKEY=stranger)
    assert ran.code == 1
    assert f"the key {id_from_prvkey(stranger)} is not a member of colony 'dev'" in ran.err


def test_bundling_errors_are_reported_before_contacting_anything(faas: Faas, tmp_path: Path) -> None:
    unreachable = {"COLONIES_SERVER_PORT": str(free_port())}
    missing = faas("deploy", tmp_path / "missing.py", **unreachable)
    assert missing.code == 1 and "no such file:" in missing.err
    broken = faas("deploy", write(tmp_path, "def f(:\n    pass\n", "broken.py"), **unreachable)
    assert broken.code == 1 and "syntax error in" in broken.err and "broken.py, line 1" in broken.err
    assert "^" in broken.err
    empty = faas("deploy", write(tmp_path, "X = 1\n", "empty.py"), **unreachable)
    assert empty.code == 1 and "no public functions in" in empty.err
    lock = faas("deploy", write(tmp_path, "import threading\nL = threading.Lock()\n\ndef f():\n    return L\n",
                                "locked.py"), **unreachable)
    assert lock.code == 1 and "cannot serialize function 'f': 'f' → global 'L' (lock object)" in lock.err


def test_env_file_configures_the_cli(faas: Faas, env: dict[str, str], tmp_path: Path) -> None:
    from sdk import Config

    envfile = tmp_path / "stack.env"
    envfile.write_text("".join(f"export {k}='{v}'\n" for k, v in Config.from_env(env).to_env().items()))
    ran = faas("deploy", EXAMPLES / "convert.py", "--env-file", envfile, COLONIES_SERVER_PORT="1")
    assert ran.code == 0, ran.err
    default = tmp_path / ".faas"
    default.mkdir()
    (default / "env").write_text(envfile.read_text())
    assert faas("ls", "--json", COLONIES_SERVER_PORT="1").code == 0  # .faas/env in the cwd is read
    none = faas("ls", "--env-file", "", COLONIES_SERVER_PORT="1")
    assert none.code == 1 and "cannot reach the Colonies server" in none.err
    assert "env file not found" in faas("ls", "--env-file", tmp_path / "nope").err
