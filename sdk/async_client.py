"""`AsyncColonies`: the asyncio twin of `Colonies`, plus `wait_many` over few websockets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from . import cfs
from . import messages as m
from . import messages_cfs as mc
from . import messages_ext as mx
from . import messages_sched as ms
from ._boundary import translate_errors
from .call import Call
from .client_base import DEFAULT_TIMEOUT, BaseClient, async_rpc
from .config import Config
from .envelope import build_envelope
from .errors import NotFoundError
from .models import File, Process
from .pubsub import WaitSet, decode_frame, subscribe_envelopes
from .stores import Store, store_from_config

__all__ = ["AsyncColonies"]

R = TypeVar("R")

PER_SOCKET = 250
"""Processes watched over one websocket by `wait_many` (two subscriptions each)."""


class AsyncColonies(BaseClient):
    """Asyncio Colonies client; same methods as `Colonies`, as coroutines. Close with `aclose()`
    (or `async with`); blocking store I/O runs on the client's own small thread pool."""

    def __init__(self, host: str = "localhost", port: int = 50080, tls: bool = False, prvkey: str = "", *,
                 store: Store | None = None, timeout: float = DEFAULT_TIMEOUT, colonyname: str = "",
                 verify: bool | str = True, max_connections: int = 100, unix_socket: str = "") -> None:
        super().__init__(host, port, tls, prvkey, store=store, timeout=timeout, colonyname=colonyname,
                         verify=verify, unix_socket=unix_socket)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        transport = httpx.AsyncHTTPTransport(uds=unix_socket, limits=limits) if unix_socket else None
        self._http = httpx.AsyncClient(timeout=timeout, verify=self.ssl_context or True, limits=limits,
                                       transport=transport)
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_config(cls, config: Config, *, store: Store | None = None, **kwargs: Any) -> AsyncColonies:
        return cls(**cls._config_kwargs(config), store=store or store_from_config(config), **kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> AsyncColonies:
        return cls.from_config(Config.from_env(env), **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    async def __aenter__(self) -> AsyncColonies:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, call: Call[Any]) -> Any:
        body = self._envelope(call)
        with translate_errors(self.where):
            reply = await self._http.post(self.api_url, content=body.encode("utf-8"),
                                          timeout=self._http_timeout(call))
        return self._result(call, reply.status_code, reply.content)

    async def _blocking(self, fn: Callable[..., R], *args: Any) -> R:
        # Our own pool (joined in aclose) rather than the loop's default executor, so no worker
        # thread outlives the client.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="colonies-store")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- one method per message (signatures and docs come from sdk.messages*) -------------------
    version = async_rpc(m.version)
    server_info = async_rpc(m.server_info)
    statistics = async_rpc(m.statistics)
    add_colony = async_rpc(m.add_colony)
    remove_colony = async_rpc(m.remove_colony)
    get_colonies = async_rpc(m.get_colonies)
    get_colony = async_rpc(m.get_colony)
    colony_stats = async_rpc(m.colony_stats)
    add_user = async_rpc(m.add_user)
    get_users = async_rpc(m.get_users)
    remove_user = async_rpc(m.remove_user)
    add_executor = async_rpc(m.add_executor)
    approve_executor = async_rpc(m.approve_executor)
    reject_executor = async_rpc(m.reject_executor)
    remove_executor = async_rpc(m.remove_executor)
    get_executors = async_rpc(m.get_executors)
    get_executor = async_rpc(m.get_executor)
    heartbeat = async_rpc(m.heartbeat)
    close_and_assign = async_rpc(m.close_and_assign)
    add_function = async_rpc(m.add_function)
    get_functions = async_rpc(m.get_functions)
    remove_function = async_rpc(m.remove_function)
    submit = async_rpc(m.submit)
    assign = async_rpc(m.assign)
    get_process = async_rpc(m.get_process)
    get_processes = async_rpc(m.get_processes)
    remove_process = async_rpc(m.remove_process)
    remove_all_processes = async_rpc(m.remove_all_processes)
    close = async_rpc(m.close)
    fail = async_rpc(m.fail)
    set_output = async_rpc(m.set_output)
    add_attribute = async_rpc(m.add_attribute)
    get_attribute = async_rpc(m.get_attribute)
    add_log = async_rpc(m.add_log)
    add_executor_log = async_rpc(m.add_executor_log)
    get_logs = async_rpc(m.get_logs)
    search_logs = async_rpc(m.search_logs)
    submit_workflow = async_rpc(m.submit_workflow)
    get_processgraph = async_rpc(m.get_processgraph)
    get_processgraphs = async_rpc(m.get_processgraphs)
    remove_processgraph = async_rpc(m.remove_processgraph)
    remove_all_processgraphs = async_rpc(m.remove_all_processgraphs)
    add_child = async_rpc(m.add_child)
    add_file = async_rpc(mc.add_file)
    get_file = async_rpc(mc.get_file)
    get_file_by_id = async_rpc(mc.get_file_by_id)
    get_files = async_rpc(mc.get_files)
    get_file_labels = async_rpc(mc.get_file_labels)
    remove_file = async_rpc(mc.remove_file)
    remove_file_by_id = async_rpc(mc.remove_file_by_id)
    create_snapshot = async_rpc(mc.create_snapshot)
    get_snapshot = async_rpc(mc.get_snapshot)
    get_snapshots = async_rpc(mc.get_snapshots)
    remove_snapshot = async_rpc(mc.remove_snapshot)
    add_cron = async_rpc(ms.add_cron)
    get_cron = async_rpc(ms.get_cron)
    get_crons = async_rpc(ms.get_crons)
    remove_cron = async_rpc(ms.remove_cron)
    run_cron = async_rpc(ms.run_cron)
    add_generator = async_rpc(ms.add_generator)
    get_generator = async_rpc(ms.get_generator)
    get_generators = async_rpc(ms.get_generators)
    remove_generator = async_rpc(ms.remove_generator)
    pack_generator = async_rpc(ms.pack_generator)
    resolve_generator = async_rpc(ms.resolve_generator)
    channel_append = async_rpc(mx.channel_append)
    channel_read = async_rpc(mx.channel_read)
    add_blueprint_definition = async_rpc(mx.add_blueprint_definition)
    get_blueprint_definition = async_rpc(mx.get_blueprint_definition)
    get_blueprint_definitions = async_rpc(mx.get_blueprint_definitions)
    remove_blueprint_definition = async_rpc(mx.remove_blueprint_definition)
    add_blueprint = async_rpc(mx.add_blueprint)
    get_blueprint = async_rpc(mx.get_blueprint)
    get_blueprints = async_rpc(mx.get_blueprints)
    update_blueprint = async_rpc(mx.update_blueprint)
    remove_blueprint = async_rpc(mx.remove_blueprint)
    update_blueprint_status = async_rpc(mx.update_blueprint_status)
    reconcile_blueprint = async_rpc(mx.reconcile_blueprint)
    get_blueprint_history = async_rpc(mx.get_blueprint_history)

    # -- waiting ------------------------------------------------------------------------------

    async def wait(self, process: Process | str, timeout: float, *, prvkey: str | None = None) -> Process:
        """Until the process ends (SUCCESS, FAILED or CANCELLED); ColoniesTimeoutError after `timeout` s."""
        pid = process if isinstance(process, str) else process.processid
        return (await self.wait_many([pid], timeout, prvkey=prvkey))[0]

    async def wait_many(self, ids: Iterable[str | Process], timeout: float, *,
                        prvkey: str | None = None) -> list[Process]:
        """Wait for all these processes to end, over one websocket per PER_SOCKET processes.

        Returns them in the given order. On timeout raises ColoniesTimeoutError whose
        `.processes` holds the last known state of each."""
        pids = [p if isinstance(p, str) else p.processid for p in ids]
        deadline = time.monotonic() + timeout
        waits = WaitSet(pids)
        for proc in await asyncio.gather(*(self.get_process(p, prvkey=prvkey) for p in waits.order)):
            waits.offer(proc)
        pending = [p for p in waits.order if p in waits.pending]
        chunks = [pending[i:i + PER_SOCKET] for i in range(0, len(pending), PER_SOCKET)]
        await asyncio.gather(*(self._watch(chunk, waits, deadline, timeout, prvkey) for chunk in chunks))
        if not waits.done:
            for proc in await asyncio.gather(*(self.get_process(p, prvkey=prvkey) for p in waits.pending)):
                waits.offer(proc)
        if not waits.done:
            raise waits.timeout_error(timeout)
        return [waits.latest[p] for p in pids]  # input order, duplicates included

    async def _watch(self, pids: list[str], waits: WaitSet, deadline: float, timeout: float,
                     prvkey: str | None) -> None:
        key = self._key(prvkey)
        mine = set(pids)
        with translate_errors():
            async with ws_connect(self.ws_url, **self._ws_options(timeout)) as ws:
                for pid in pids:
                    spec = waits.latest[pid].spec
                    for frame in subscribe_envelopes(pid, spec.conditions.executortype, timeout, key,
                                                     spec.conditions.colonyname):
                        await ws.send(frame)
                # Some may have ended before the subscriptions were registered.
                for proc in await asyncio.gather(*(self.get_process(p, prvkey=prvkey) for p in pids)):
                    waits.offer(proc)
                while mine & waits.pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    try:
                        text = await asyncio.wait_for(ws.recv(), remaining)
                    except (asyncio.TimeoutError, ConnectionClosed):
                        return
                    waits.offer(decode_frame(text))

    async def subscribe_channel(self, processid: str, name: str, afterseq: int = 0, timeout: float = 30.0, *,
                                prvkey: str | None = None) -> list[dict[str, Any]]:
        """Channel entries pushed over `/pubsub` until the server's empty batch or `timeout` s."""
        envelope = build_envelope(mx.subscribe_channel_msg(processid, name, afterseq, timeout),
                                  self._key(prvkey))
        deadline = time.monotonic() + timeout
        entries: list[dict[str, Any]] = []
        with translate_errors():
            async with ws_connect(self.ws_url, **self._ws_options(timeout)) as ws:
                await ws.send(envelope)
                while (remaining := deadline - time.monotonic()) > 0:
                    try:
                        text = await asyncio.wait_for(ws.recv(), remaining)
                    except (asyncio.TimeoutError, ConnectionClosed):
                        break
                    batch = self._channel_batch(text)
                    if not batch:
                        break
                    entries.extend(batch)
        return entries

    # -- CFS bytes ----------------------------------------------------------------------------

    async def upload_bytes(self, colony: str, label: str, name: str, data: bytes, *,
                           prvkey: str | None = None) -> File:
        ref = await self._blocking(self._require_store().put, data)
        record = cfs.file_record(colony, label, name, len(data), cfs.checksum(data), ref)
        return await self.add_file(record, prvkey=prvkey)

    async def upload_file(self, colony: str, label: str, path: str | os.PathLike[str],
                          name: str | None = None, *, prvkey: str | None = None) -> File:
        digest, size = await self._blocking(cfs.checksum_file, path)
        ref = await self._blocking(self._require_store().put_path, path)
        record = cfs.file_record(colony, label, name or Path(path).name, size, digest, ref)
        return await self.add_file(record, prvkey=prvkey)

    async def _find(self, colony: str, label: str, name: str | None, fileid: str | None, latest: bool,
                    prvkey: str | None) -> File:
        if fileid:
            return await self.get_file_by_id(colony, fileid, prvkey=prvkey)
        if not name:
            raise ValueError("pass a file name or a fileid")
        files = await self.get_file(colony, cfs.normalize_label(label), name, latest, prvkey=prvkey)
        if not files:
            raise NotFoundError(f"no file {label}/{name}", 404)
        return files[0]

    async def download_bytes(self, colony: str, label: str, name: str | None = None,
                             fileid: str | None = None, latest: bool = True, *,
                             prvkey: str | None = None) -> bytes:
        file = await self._find(colony, label, name, fileid, latest, prvkey)
        data = await self._blocking(self._require_store().get, file.ref)
        cfs.verify(file, data)
        return data

    async def download_file(self, colony: str, label: str, dst: str | os.PathLike[str],
                            name: str | None = None, fileid: str | None = None, latest: bool = True, *,
                            prvkey: str | None = None) -> Path:
        file = await self._find(colony, label, name, fileid, latest, prvkey)
        target = Path(dst) / file.name if Path(dst).is_dir() else Path(dst)
        data = await self._blocking(self._require_store().get, file.ref)
        cfs.verify(file, data)
        await self._blocking(_write_file, target, data)
        return target

    async def delete_file(self, colony: str, label: str, name: str, *, prvkey: str | None = None) -> None:
        label = cfs.normalize_label(label)
        store = self._require_store()
        for file in await self.get_file(colony, label, name, False, prvkey=prvkey):
            try:
                await self._blocking(store.delete, file.ref)
            except NotFoundError:
                pass
        await self.remove_file(colony, label, name, prvkey=prvkey)


def _write_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
