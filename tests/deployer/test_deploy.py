"""deploy.py against a real server with the SDK's local-directory store: versions, revisions,
rollback, and a deploy that fails half-way leaving nothing behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deployer.bundle import Limits, build_bundle
from deployer.deploy import Target, deploy_bundles, list_functions, remove_function, revisions, rollback
from deployer.errors import DeployerError, FunctionNotFoundError
from deployer.inspect_functions import SourceFile, find_functions
from sdk import Colonies, LocalStore, NotFoundError
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ServerHandle

Load = Callable[..., SourceFile]


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def target(server: ServerHandle, store_dir: Path) -> Iterator[Target]:
    with Colonies(host=server.host, port=server.port, prvkey=DEV_PRVKEY, store=LocalStore(store_dir)) as client:
        yield Target(client, DEV_COLONY)


def bundles_of(load: Load, text: str, name: str = "funcs.py", limits: Limits = Limits()) -> list:
    source = load(text, name)
    return [build_bundle(source, f, limits) for f in find_functions(source)]


def test_states_versions_and_revisions(target: Target, load: Load) -> None:
    v1 = bundles_of(load, "def a(x):\n    return x\n\ndef b(x):\n    return -x\n")
    assert [(r.name, r.state) for r in deploy_bundles(target, v1)] == [("a", "new"), ("b", "new")]
    assert [r.state for r in deploy_bundles(target, v1)] == ["unchanged", "unchanged"]
    v2 = bundles_of(load, "def a(x):\n    return x + 1\n\ndef b(x):\n    return -x\n", "funcs2.py")
    assert [r.state for r in deploy_bundles(target, v2)] == ["updated", "unchanged"]
    infos = {i.name: i for i in list_functions(target)}
    assert {n: (i.latest.version, i.revisions) for n, i in infos.items()} == {
        "a": (v2[0].version, 2), "b": (v1[1].version, 1)}
    assert [r.bundle.version for r in revisions(target, "a")] == [v2[0].version, v1[0].version]


def test_rollback_by_prefix_and_errors(target: Target, load: Load) -> None:
    old = bundles_of(load, "def a(x):\n    return 1\n")[0]
    new = bundles_of(load, "def a(x):\n    return 2\n", "funcs2.py")[0]
    deploy_bundles(target, [old])
    deploy_bundles(target, [new])
    assert rollback(target, "a", old.version[:5]).state == "rolled back"
    assert [r.bundle.version for r in revisions(target, "a")] == [old.version, new.version, old.version]
    assert rollback(target, "a", old.version).state == "unchanged"
    with pytest.raises(FunctionNotFoundError, match="a has no version 'ffffffff'"):
        rollback(target, "a", "ffffffff")
    with pytest.raises(FunctionNotFoundError, match="has no version 'ab'"):
        rollback(target, "a", "ab")  # too short to be a prefix
    with pytest.raises(FunctionNotFoundError, match="no function 'zz' is deployed"):
        rollback(target, "zz", old.version)


def test_remove_deletes_revisions_and_bytes(target: Target, load: Load, store_dir: Path) -> None:
    deploy_bundles(target, bundles_of(load, "def a(x):\n    return 1\n"))
    deploy_bundles(target, bundles_of(load, "def a(x):\n    return 2\n", "funcs2.py"))
    assert len([p for p in store_dir.iterdir() if not p.name.startswith(".")]) == 2
    assert remove_function(target, "a") == 2
    assert list_functions(target) == []
    assert [p for p in store_dir.iterdir() if not p.name.startswith(".")] == []
    with pytest.raises(FunctionNotFoundError):
        remove_function(target, "a")


def test_a_deploy_failing_half_way_leaves_nothing_behind(target: Target, load: Load, store_dir: Path) -> None:
    before = bundles_of(load, "def b(x):\n    return 1\n")
    deploy_bundles(target, before)
    batch = bundles_of(load, "def a(x):\n    return 0\n\ndef b(x):\n    return 2\n\ndef c(x):\n    return 3\n",
                       "funcs2.py")
    uploads: list[str] = []
    aside = store_dir.with_name("store-aside")

    def break_store_before_third_upload(message: str) -> None:
        uploads.append(message)
        if len(uploads) == 3:  # a and b are stored; now the store directory goes away
            store_dir.rename(aside)
            store_dir.write_text("not a directory any more")

    with pytest.raises(DeployerError, match="the file store failed"):
        deploy_bundles(target, batch, break_store_before_third_upload)
    assert [m.split()[1] for m in uploads] == ["a", "b", "c"]
    store_dir.unlink()
    aside.rename(store_dir)
    with pytest.raises(NotFoundError):
        target.client.get_file(DEV_COLONY, "/faas", "a", True)
    assert [r.bundle.version for r in revisions(target, "b")] == [before[0].version]
    assert [i.name for i in list_functions(target)] == ["b"]


def test_versions_of_unknown_function(target: Target) -> None:
    with pytest.raises(FunctionNotFoundError, match="no function 'nope' is deployed"):
        revisions(target, "nope")
