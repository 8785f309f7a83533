"""`Colonies`: the synchronous client (httpx keep-alive pool, websocket waits, CFS bytes)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from . import cfs
from . import messages as m
from . import messages_cfs as mc
from . import messages_ext as mx
from . import messages_sched as ms
from ._boundary import translate_errors
from .call import Call
from .client_base import DEFAULT_TIMEOUT, BaseClient, sync_rpc
from .config import Config
from .envelope import build_envelope
from .errors import ColoniesTimeoutError, NotFoundError
from .models import File, Process
from .pubsub import decode_frame, subscribe_envelopes
from .stores import Store, store_from_config

__all__ = ["Colonies"]


class Colonies(BaseClient):
    """Synchronous Colonies client; every method takes `prvkey=` to sign with another key."""

    def __init__(self, host: str = "localhost", port: int = 50080, tls: bool = False, prvkey: str = "", *,
                 store: Store | None = None, timeout: float = DEFAULT_TIMEOUT, colonyname: str = "",
                 verify: bool | str = True, max_connections: int = 100, unix_socket: str = "") -> None:
        super().__init__(host, port, tls, prvkey, store=store, timeout=timeout, colonyname=colonyname,
                         verify=verify, unix_socket=unix_socket)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        transport = httpx.HTTPTransport(uds=unix_socket, limits=limits) if unix_socket else None
        self._http = httpx.Client(timeout=timeout, verify=self.ssl_context or True, limits=limits, transport=transport)

    @classmethod
    def from_config(cls, config: Config, *, store: Store | None = None, **kwargs: Any) -> Colonies:
        """A client for `config`; the store defaults to the config's S3 (None without AWS_S3_*)."""
        return cls(**cls._config_kwargs(config), store=store or store_from_config(config), **kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Colonies:
        """A client from COLONIES_* / AWS_S3_* (default: os.environ)."""
        return cls.from_config(Config.from_env(env), **kwargs)

    def close_connections(self) -> None:
        self._http.close()

    def __enter__(self) -> Colonies:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_connections()

    def _send(self, call: Call[Any]) -> Any:
        body = self._envelope(call)
        with translate_errors(self.where):
            reply = self._http.post(self.api_url, content=body.encode("utf-8"),
                                    timeout=self._http_timeout(call))
        return self._result(call, reply.status_code, reply.content)

    # -- one method per message (signatures and docs come from sdk.messages*) -------------------
    version = sync_rpc(m.version)
    server_info = sync_rpc(m.server_info)
    statistics = sync_rpc(m.statistics)
    add_colony = sync_rpc(m.add_colony)
    remove_colony = sync_rpc(m.remove_colony)
    get_colonies = sync_rpc(m.get_colonies)
    get_colony = sync_rpc(m.get_colony)
    colony_stats = sync_rpc(m.colony_stats)
    add_user = sync_rpc(m.add_user)
    get_users = sync_rpc(m.get_users)
    remove_user = sync_rpc(m.remove_user)
    add_executor = sync_rpc(m.add_executor)
    approve_executor = sync_rpc(m.approve_executor)
    reject_executor = sync_rpc(m.reject_executor)
    remove_executor = sync_rpc(m.remove_executor)
    get_executors = sync_rpc(m.get_executors)
    get_executor = sync_rpc(m.get_executor)
    heartbeat = sync_rpc(m.heartbeat)
    close_and_assign = sync_rpc(m.close_and_assign)
    add_function = sync_rpc(m.add_function)
    get_functions = sync_rpc(m.get_functions)
    remove_function = sync_rpc(m.remove_function)
    submit = sync_rpc(m.submit)
    assign = sync_rpc(m.assign)
    get_process = sync_rpc(m.get_process)
    get_processes = sync_rpc(m.get_processes)
    remove_process = sync_rpc(m.remove_process)
    remove_all_processes = sync_rpc(m.remove_all_processes)
    close = sync_rpc(m.close)
    fail = sync_rpc(m.fail)
    set_output = sync_rpc(m.set_output)
    add_attribute = sync_rpc(m.add_attribute)
    get_attribute = sync_rpc(m.get_attribute)
    add_log = sync_rpc(m.add_log)
    add_executor_log = sync_rpc(m.add_executor_log)
    get_logs = sync_rpc(m.get_logs)
    search_logs = sync_rpc(m.search_logs)
    submit_workflow = sync_rpc(m.submit_workflow)
    get_processgraph = sync_rpc(m.get_processgraph)
    get_processgraphs = sync_rpc(m.get_processgraphs)
    remove_processgraph = sync_rpc(m.remove_processgraph)
    remove_all_processgraphs = sync_rpc(m.remove_all_processgraphs)
    add_child = sync_rpc(m.add_child)
    add_file = sync_rpc(mc.add_file)
    get_file = sync_rpc(mc.get_file)
    get_file_by_id = sync_rpc(mc.get_file_by_id)
    get_files = sync_rpc(mc.get_files)
    get_file_labels = sync_rpc(mc.get_file_labels)
    remove_file = sync_rpc(mc.remove_file)
    remove_file_by_id = sync_rpc(mc.remove_file_by_id)
    create_snapshot = sync_rpc(mc.create_snapshot)
    get_snapshot = sync_rpc(mc.get_snapshot)
    get_snapshots = sync_rpc(mc.get_snapshots)
    remove_snapshot = sync_rpc(mc.remove_snapshot)
    add_cron = sync_rpc(ms.add_cron)
    get_cron = sync_rpc(ms.get_cron)
    get_crons = sync_rpc(ms.get_crons)
    remove_cron = sync_rpc(ms.remove_cron)
    run_cron = sync_rpc(ms.run_cron)
    add_generator = sync_rpc(ms.add_generator)
    get_generator = sync_rpc(ms.get_generator)
    get_generators = sync_rpc(ms.get_generators)
    remove_generator = sync_rpc(ms.remove_generator)
    pack_generator = sync_rpc(ms.pack_generator)
    resolve_generator = sync_rpc(ms.resolve_generator)
    channel_append = sync_rpc(mx.channel_append)
    channel_read = sync_rpc(mx.channel_read)
    add_blueprint_definition = sync_rpc(mx.add_blueprint_definition)
    get_blueprint_definition = sync_rpc(mx.get_blueprint_definition)
    get_blueprint_definitions = sync_rpc(mx.get_blueprint_definitions)
    remove_blueprint_definition = sync_rpc(mx.remove_blueprint_definition)
    add_blueprint = sync_rpc(mx.add_blueprint)
    get_blueprint = sync_rpc(mx.get_blueprint)
    get_blueprints = sync_rpc(mx.get_blueprints)
    update_blueprint = sync_rpc(mx.update_blueprint)
    remove_blueprint = sync_rpc(mx.remove_blueprint)
    update_blueprint_status = sync_rpc(mx.update_blueprint_status)
    reconcile_blueprint = sync_rpc(mx.reconcile_blueprint)
    get_blueprint_history = sync_rpc(mx.get_blueprint_history)

    # -- waiting ------------------------------------------------------------------------------

    def wait(self, process: Process | str, timeout: float, *, prvkey: str | None = None) -> Process:
        """Block until the process ends (SUCCESS, FAILED or CANCELLED) and return it; raise
        ColoniesTimeoutError if it has not ended after `timeout` seconds."""
        pid = process if isinstance(process, str) else process.processid
        deadline = time.monotonic() + timeout
        current = self.get_process(pid, prvkey=prvkey)
        if current.state.is_final:
            return current
        frames = subscribe_envelopes(pid, current.spec.conditions.executortype, timeout, self._key(prvkey),
                                     current.spec.conditions.colonyname)
        with translate_errors(), ws_connect(self.ws_url, **self._ws_options(timeout)) as ws:
            for frame in frames:
                ws.send(frame)
            # It may have ended before the subscriptions were registered.
            current = self.get_process(pid, prvkey=prvkey)
            while not current.state.is_final:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    text = ws.recv(timeout=remaining)
                except TimeoutError:
                    break
                except ConnectionClosed:
                    break  # the server ends a subscription by dropping the socket
                got = decode_frame(text)
                if got.processid == pid:
                    current = got
        if not current.state.is_final:
            current = self.get_process(pid, prvkey=prvkey)
        if current.state.is_final:
            return current
        raise ColoniesTimeoutError(f"process {pid} still {current.state.name} after {timeout} s")

    def subscribe_channel(self, processid: str, name: str, afterseq: int = 0, timeout: float = 30.0, *,
                          prvkey: str | None = None) -> list[dict[str, Any]]:
        """Channel entries pushed over `/pubsub` until the server's empty batch or `timeout` s."""
        envelope = build_envelope(mx.subscribe_channel_msg(processid, name, afterseq, timeout),
                                  self._key(prvkey))
        deadline = time.monotonic() + timeout
        entries: list[dict[str, Any]] = []
        with translate_errors(), ws_connect(self.ws_url, **self._ws_options(timeout)) as ws:
            ws.send(envelope)
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    text = ws.recv(timeout=remaining)
                except (TimeoutError, ConnectionClosed):
                    break
                batch = self._channel_batch(text)
                if not batch:
                    break
                entries.extend(batch)
        return entries

    # -- CFS bytes ----------------------------------------------------------------------------

    def upload_bytes(self, colony: str, label: str, name: str, data: bytes, *,
                     prvkey: str | None = None) -> File:
        """Store `data` and record it as a new version of label/name."""
        ref = self._require_store().put(data)
        record = cfs.file_record(colony, label, name, len(data), cfs.checksum(data), ref)
        return self.add_file(record, prvkey=prvkey)

    def upload_file(self, colony: str, label: str, path: str | os.PathLike[str], name: str | None = None, *,
                    prvkey: str | None = None) -> File:
        """Upload a local file (streamed) as label/name (default: the file's base name)."""
        digest, size = cfs.checksum_file(path)
        ref = self._require_store().put_path(path)
        record = cfs.file_record(colony, label, name or Path(path).name, size, digest, ref)
        return self.add_file(record, prvkey=prvkey)

    def _find(self, colony: str, label: str, name: str | None, fileid: str | None, latest: bool,
              prvkey: str | None) -> File:
        if fileid:
            return self.get_file_by_id(colony, fileid, prvkey=prvkey)
        if not name:
            raise ValueError("pass a file name or a fileid")
        files = self.get_file(colony, cfs.normalize_label(label), name, latest, prvkey=prvkey)
        if not files:
            raise NotFoundError(f"no file {label}/{name}", 404)
        return files[0]

    def download_bytes(self, colony: str, label: str, name: str | None = None, fileid: str | None = None,
                       latest: bool = True, *, prvkey: str | None = None) -> bytes:
        """The bytes of the newest version of label/name (or of `fileid`), checksum verified."""
        file = self._find(colony, label, name, fileid, latest, prvkey)
        data = self._require_store().get(file.ref)
        cfs.verify(file, data)
        return data

    def download_file(self, colony: str, label: str, dst: str | os.PathLike[str], name: str | None = None,
                      fileid: str | None = None, latest: bool = True, *, prvkey: str | None = None) -> Path:
        """Download to `dst` (a directory: keep the CFS name) after verifying the checksum."""
        file = self._find(colony, label, name, fileid, latest, prvkey)
        target = Path(dst) / file.name if Path(dst).is_dir() else Path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        try:
            self._require_store().get_to_path(file.ref, tmp)
            with open(tmp, "rb") as f:
                cfs.verify(file, iter(lambda: f.read(1 << 20), b""))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def delete_file(self, colony: str, label: str, name: str, *, prvkey: str | None = None) -> None:
        """Delete every version of label/name: the stored bytes, then the CFS records."""
        label = cfs.normalize_label(label)
        store = self._require_store()
        for file in self.get_file(colony, label, name, False, prvkey=prvkey):
            try:
                store.delete(file.ref)
            except NotFoundError:
                pass  # already gone: the metadata removal below is what matters
        self.remove_file(colony, label, name, prvkey=prvkey)
