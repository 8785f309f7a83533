"""TEST-ONLY stand-in for the FaaS executor, so the CLI's end-to-end tests run without faas_executor.

An assign loop on a daemon thread: it loads the newest `/faas/<funcname>` bundle with the
deployer's own reference loader (source exec'd, cloudpickle unpickled, bare tutorial files too),
calls it with spec.args/kwargs in this process, turns what it printed into process logs, and
closes the process with output [result] or fails it with the traceback text. A coroutine's result
is what it returns, a generator's the list of what it yielded, as in the real worker. No sandbox,
no limits, no warm workers: never use it outside tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import threading
import traceback
from typing import Any

from deployer.bundle import LABEL, load_entrypoint, parse_bundle
from sdk import Colonies, Executor, ExecutorState, Store, id_from_prvkey, new_prvkey


class StandInExecutor:
    """One executor of type faas-executor registered in the colony, serving until stop()."""

    def __init__(self, host: str, port: int, colony: str, colony_prvkey: str, store: Store) -> None:
        self.prvkey = new_prvkey()
        self.name = "deployer-stand-in-" + id_from_prvkey(self.prvkey)[:8]
        self.colony = colony
        self.client = Colonies(host=host, port=port, prvkey=self.prvkey, store=store)
        with Colonies(host=host, port=port, prvkey=colony_prvkey) as owner:
            owner.add_executor(Executor(executorid=id_from_prvkey(self.prvkey), executortype="faas-executor",
                                        executorname=self.name, colonyname=colony, state=ExecutorState.PENDING))
            owner.approve_executor(colony, self.name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stand-in-{self.name}", daemon=True)
        self.served = 0

    def start(self) -> StandInExecutor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.client.close_connections()

    def run_once(self, timeout: int = 1) -> bool:
        """Assign and run at most one process; True when one was run."""
        process = self.client.assign(self.colony, timeout)
        if process is None:
            return False
        spec = process.spec
        printed = io.StringIO()
        try:
            bundle = parse_bundle(spec.funcname, self.client.download_bytes(self.colony, LABEL, spec.funcname))
            fn: Any = load_entrypoint(bundle)
            with contextlib.redirect_stdout(printed):
                result = _settle(fn(*spec.args, **(spec.kwargs or {})))
        except Exception:
            self._logs(process.processid, printed.getvalue())
            self.client.fail(process.processid, [traceback.format_exc()])
        else:
            self._logs(process.processid, printed.getvalue())
            self.client.close(process.processid, [result])
        self.served += 1
        return True

    def _logs(self, processid: str, text: str) -> None:
        for line in text.splitlines(keepends=True):
            self.client.add_log(processid, line)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the server went away at teardown, or a transient error
                if self._stop.is_set():
                    return
                traceback.print_exc()
                self._stop.wait(0.1)


def _settle(value: Any) -> Any:
    """What the real worker makes of a call's return value (docs/EXECUTOR.md, "Results")."""
    if inspect.isgenerator(value):
        return list(value)
    if inspect.isasyncgen(value):
        async def drain() -> list[Any]:
            return [item async for item in value]

        return asyncio.run(drain())
    if inspect.isawaitable(value):
        async def wait() -> Any:
            return await value

        return asyncio.run(wait())
    return value
