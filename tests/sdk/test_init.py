"""The package's public names: sorted, importable, and the SDK-API surface on both twins."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import sdk
from sdk import AsyncColonies, Colonies

# docs/SDK-API.md, every method name in its table.
SDK_API = """
version server_info statistics add_colony remove_colony get_colonies get_colony colony_stats
add_user get_users remove_user add_executor approve_executor reject_executor remove_executor
get_executors get_executor heartbeat add_function get_functions remove_function submit assign
get_process get_processes remove_process remove_all_processes close fail set_output wait
add_attribute get_attribute add_log add_executor_log get_logs search_logs submit_workflow
get_processgraph get_processgraphs remove_processgraph remove_all_processgraphs add_child add_file
get_file get_file_by_id get_files get_file_labels remove_file create_snapshot get_snapshot
get_snapshots remove_snapshot upload_bytes upload_file download_bytes download_file delete_file
add_cron get_cron get_crons remove_cron run_cron
""".split()  # noqa: SIM905 - reads like the table it mirrors


def test_all_is_sorted_and_importable() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert len(set(sdk.__all__)) == len(sdk.__all__)
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name
    for info in pkgutil.iter_modules(sdk.__path__, "sdk."):
        module = info.name
        mod = importlib.import_module(module)
        assert mod.__all__ == sorted(mod.__all__), module
        for name in mod.__all__:
            assert hasattr(mod, name), f"{module}.{name}"


async def test_both_twins_have_every_sdk_api_method() -> None:
    with Colonies() as sync:
        for name in SDK_API:
            assert callable(getattr(sync, name)), name
    async with AsyncColonies() as client:
        for name in SDK_API:
            assert inspect.iscoroutinefunction(getattr(client, name)), name
        assert inspect.iscoroutinefunction(client.wait_many)


def test_every_rpc_method_accepts_prvkey() -> None:
    for name in SDK_API:
        params = inspect.signature(getattr(Colonies, name)).parameters
        assert "prvkey" in params, name
        assert params["prvkey"].kind is inspect.Parameter.KEYWORD_ONLY, name
