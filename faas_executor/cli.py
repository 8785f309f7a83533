"""`faas executor start …`: parse arguments and the environment once, build the executor, run it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace

from sdk import ColoniesError, Config
from sdk.longrun import LOG_LEVELS, configure_logging, quiet_gc

from .config import DEFAULT_TYPE, ExecutorSettings, default_name

__all__ = ["build_parser", "main", "settings_from"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="faas executor", description="Run deployed functions in sandboxed warm workers")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start = sub.add_parser("start", help="register (or reuse) an executor and serve calls until SIGTERM")
    start.add_argument("--concurrency", type=int, default=ExecutorSettings.concurrency,
                       help="calls run at once (= warm worker slots; default %(default)s: one more than 2 cores, "
                            "use your cores + 1)")
    start.add_argument("--prefetch", type=int, default=ExecutorSettings.prefetch,
                       help="calls taken beyond --concurrency while calls are short (< 0.1 s), so a worker "
                            "that frees finds its next call waiting, and closed several to a message; 0 takes "
                            "a call only for a free worker")
    start.add_argument("--name", help="executor name (default: COLONIES_EXECUTOR_NAME, else a unique one)")
    start.add_argument("--type", default=None, help=f"executor type (default: {DEFAULT_TYPE})")
    start.add_argument("--timeout", type=float, default=600.0,
                       help="wall-clock limit of a call when neither the function nor maxexectime sets one (s)")
    start.add_argument("--memory", type=int, default=256, help="memory cap per worker, MiB (a function's own wins)")
    start.add_argument("--cpu", type=int, default=60, help="CPU-time cap per call, seconds")
    start.add_argument("--nofile", type=int, default=256, help="open-files cap per worker")
    start.add_argument("--lease", type=float, default=30.0, help="heartbeat lease, seconds")
    start.add_argument("--assign-timeout", type=float, default=5.0, help="long-poll of one assign, seconds")
    start.add_argument("--state-dir", help="bundle cache, installed requirements and scratch dirs "
                                           "(default: TMPDIR/colonyfaas-executor, -UID appended when not root)")
    start.add_argument("--uid-base", default="64100",
                       help="first unprivileged uid for workers (one per slot); 'none' keeps the uid")
    start.add_argument("--no-landlock", action="store_true", help="do not apply Landlock")
    start.add_argument("--no-seccomp", action="store_true", help="do not apply seccomp")
    start.add_argument("--no-namespaces", action="store_true", help="do not unshare namespaces")
    start.add_argument("--no-cgroups", action="store_true", help="do not use cgroup limits")
    start.add_argument("--burst", action="store_true", help="exit when nothing is left to assign")
    start.add_argument("--log-level", default="info", type=str.lower, choices=LOG_LEVELS)
    return p


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[ExecutorSettings, Config]:
    """(executor settings, sdk Config) from parsed arguments and an environment mapping."""
    config = Config.from_env(env)
    executortype = args.type or config.executortype or DEFAULT_TYPE
    settings = ExecutorSettings(
        colonyname=config.colonyname,
        executorname=args.name or config.executorname or default_name(executortype),
        executortype=executortype,
        # With the colony key a new identity is registered: COLONIES_PRVKEY is then usually the
        # user's own key (the env file of `faas dev` exports it for clients), never an executor's.
        prvkey="" if config.colony_prvkey else config.prvkey,
        colony_prvkey=config.colony_prvkey, concurrency=args.concurrency, prefetch=args.prefetch,
        assign_timeout=args.assign_timeout, default_timeout=args.timeout, lease=args.lease)
    if args.state_dir:
        settings = replace(settings, state_dir=args.state_dir)
    uid_base = None if str(args.uid_base).lower() == "none" else int(args.uid_base)
    pool = replace(settings.pool_settings(), memory_mb=args.memory, cpu_seconds=args.cpu, nofile=args.nofile,
                   uid_base=uid_base, landlock=not args.no_landlock, seccomp=not args.no_seccomp,
                   namespaces=not args.no_namespaces, cgroups=not args.no_cgroups)
    return replace(settings, pool=pool), config


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_level)
    # A line per call at INFO: skip the record fields this format never prints (the logging
    # HOWTO's "Optimization" settings): the caller's frame lookup, thread and process names.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    try:
        settings, config = settings_from(args, os.environ)
    except ValueError as e:
        print(f"faas executor: {e}", file=sys.stderr)
        return 2
    from sdk.client import Colonies

    from . import _linux
    from .executor import Executor

    # Workers may run as this uid (not root): keep them out of this process's memory and its
    # /proc/<pid>/environ (the colony key, the S3 secret). Reset by execve, so workers are not.
    try:
        _linux.set_dumpable(False)
    except OSError as e:
        logging.getLogger(__name__).warning("cannot make the executor undumpable: %s", e)
    client = Colonies.from_config(config)
    try:
        executor = Executor(settings, client)
    except OSError as e:  # the state dir (StateDirError says why), a uid lock, a cgroup
        print(f"faas executor: cannot start: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: executor.request_stop())
    signal.signal(signal.SIGINT, lambda *_: executor.request_stop())
    quiet_gc()
    try:
        return executor.run(burst=args.burst)
    except ColoniesError as e:  # e.g. the name is taken, the colony key is wrong, no server
        logging.getLogger(__name__).error("faas executor: %s", e)
        return 1
    finally:
        client.close_connections()
