"""The `faas` command line: argument parsing and rendering only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DeployerError
from .settings import DEFAULT_ENV_FILE, connect, load_settings

if TYPE_CHECKING:
    from .deploy import DeployResult, Target
    from .invoke import Invocation

__all__ = ["build_parser", "main"]

# Components other than the deployer register their subcommand under this entry-point group,
# so the CLI starts them without importing them (ARCHITECTURE.md import rules).
COMMAND_GROUP = "colonyfaas.commands"
BUILTIN_COMMANDS = frozenset({"keys", "dev", "deploy", "ls", "versions", "rm", "rollback", "invoke", "logs", "ps"})


# importlib.metadata costs ~70 ms to import: only `--version` and plugin commands need it.
def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("colonyfaas")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _plugins() -> dict[str, Callable[[], Callable[[list[str]], int]]]:
    """Plugin command name → a loader of its `main(argv)`."""
    from importlib import metadata

    return {ep.name: ep.load for ep in metadata.entry_points(group=COMMAND_GROUP)}


class _VersionAction(argparse.Action):
    """`--version`, with the version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"colonyfaas {_version()}")
        parser.exit()


def _err(message: str) -> None:
    print(f"faas: {message}", file=sys.stderr)


def _progress(message: str) -> None:
    print(f"faas: {message}", file=sys.stderr, flush=True)


def _target(args: argparse.Namespace) -> AbstractContextManager[Target]:
    return connect(args.settings)


# -- commands ---------------------------------------------------------------------------------


def _cmd_dev(args: argparse.Namespace) -> int:
    from .devstack import DevOptions, run_dev

    opts = DevOptions(data_dir=Path(args.data_dir), host=args.host, server_port=args.server_port,
                      gateway_port=args.gateway_port, s3_port=args.s3_port, executors=args.executors,
                      concurrency=args.concurrency, deploy=tuple(Path(p) for p in args.deploy),
                      local_store=args.local_store)
    return run_dev(opts, say=lambda line: print(line, flush=True))


def _cmd_keys(args: argparse.Namespace) -> int:
    from sdk.crypto import id_from_prvkey, new_prvkey

    if args.keys_command == "new":
        prv = new_prvkey()
        print(f"prvkey: {prv}")
        print(f"id:     {id_from_prvkey(prv)}")
        return 0
    if args.keys_command == "id":
        try:
            print(id_from_prvkey(args.prvkey))
        except ValueError as e:
            _err(str(e))
            return 2
        return 0
    return 2


def _read_requirements(path: str | None) -> tuple[str, ...]:
    if not path:
        return ()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise DeployerError(f"cannot read requirements file {path}: {e.strerror or e}") from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    for number, line in enumerate(lines, 1):
        if line.startswith("-"):
            # The executor installs requirement lines only: an option could point pip at another
            # index or at a file on the executor's machine.
            raise DeployerError(f"{path}:{number}: {line!r} is a pip option; list requirements only "
                                "(the executor's pip settings choose the index)")
    return tuple(dict.fromkeys(line for line in lines if line))


def _results_table(args: argparse.Namespace, results: Sequence[DeployResult]) -> None:
    from .render import table, to_json

    gateway = args.settings.gateway_url
    if args.json:
        print(to_json([{"name": r.name, "version": r.version, "state": r.state, "serializer": r.serializer,
                        "url": f"{gateway}/function/{r.name}"} for r in results]))
        return
    print(table(["name", "version", "state", "serializer", "url"],
                [(r.name, r.version, r.state, r.serializer, f"{gateway}/function/{r.name}") for r in results]))


def _cmd_deploy(args: argparse.Namespace) -> int:
    from .bundle import Limits, build_bundle, utc_now
    from .deploy import LARGE_BUNDLE, DeployResult, deploy_bundles
    from .inspect_functions import find_functions, load_source_file, plan_function, source_path, unload
    from .render import human_size

    path = source_path(args.file)  # a missing or non-.py file is the one line of output
    requirements = _read_requirements(args.requirements)
    limits = Limits(timeout=args.timeout, retries=args.retries, memory_mb=args.memory, network=args.network)
    _progress(f"loading {path}")
    # What the file prints while it is imported must not mix with the table (or --json) on stdout.
    with redirect_stdout(sys.stderr):
        source = load_source_file(path)
    try:
        now = utc_now()
        bundles = []
        for fn in find_functions(source, args.function or ()):
            plan = plan_function(source, fn)
            _progress(f"bundling {fn.name}: {plan.serializer} ({plan.reason})")
            bundle = build_bundle(source, fn, limits, requirements, now)
            if len(bundle.code) >= LARGE_BUNDLE:
                _progress(f"{fn.name}: the bundle is {human_size(len(bundle.code))}; a pickled function carries "
                          "every module-level object it uses (large data is better read at call time)")
            bundles.append(bundle)
    finally:
        unload(source)
    if args.dry_run:
        _results_table(args, [DeployResult(b.name, b.version, "dry run", b.serializer, len(b.to_bytes()))
                              for b in bundles])
        return 0
    with _target(args) as target:
        results = deploy_bundles(target, bundles, _progress)
    _results_table(args, results)
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from .deploy import describe, list_functions
    from .render import human_time, table, to_json

    with _target(args) as target:
        infos = list_functions(target)
    if args.json:
        print(to_json([describe(i) for i in infos]))
        return 0
    rows = []
    for i in infos:
        if i.latest.error:
            _err(f"{i.name}: {i.latest.error}")
        deployed = "-" if i.latest.bundle is None else human_time(i.latest.deployed_at)
        rows.append((i.name, i.latest.version, i.latest.serializer, deployed, i.revisions))
    print(table(["name", "version", "serializer", "deployed at", "revisions"], rows))
    return 0


def _cmd_versions(args: argparse.Namespace) -> int:
    from .deploy import revisions
    from .render import human_size, human_time, table, to_json

    with _target(args) as target:
        revs = revisions(target, args.name)
    if args.json:
        print(to_json([{"version": r.bundle.version if r.bundle else None, "deployed_at": r.deployed_at,
                        "serializer": r.serializer, "size": r.file.size, "fileid": r.file.fileid,
                        "current": i == 0, "error": r.error} for i, r in enumerate(revs)]))
        return 0
    print(table(["version", "deployed at", "serializer", "size", "current"],
                [(r.version, human_time(r.deployed_at), r.serializer, human_size(r.file.size),
                  "*" if i == 0 else "") for i, r in enumerate(revs)]))
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    from .deploy import remove_function

    with _target(args) as target:
        count = remove_function(target, args.name)
    print(f"removed {args.name} ({count} revision{'s' if count != 1 else ''})")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from .deploy import rollback

    with _target(args) as target:
        result = rollback(target, args.name, args.version)
    args.json = False
    _results_table(args, [result])
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    from .callargs import split_call_words
    from .invoke import invoke_words
    from .render import to_json

    # Split now, so a malformed command line fails before anything is contacted; the values are
    # converted once the function's recorded signature has been read.
    words = split_call_words(args.values)
    with _target(args) as target:
        inv = invoke_words(target, args.name, words, wait=not args.async_,
                           timeout=args.timeout, executortype=args.executor_type or args.settings.executortype)
    if args.async_:
        print(to_json({"processid": inv.processid}) if args.json else inv.processid)
        return 0
    return _print_outcome(inv, args.json)


def _print_outcome(inv: Invocation, as_json: bool) -> int:
    """How a call ended, as `faas invoke` shows it: the result on stdout (exit 0), or the error
    text on stderr (exit 1)."""
    from sdk import ProcessState

    from .render import to_json

    if as_json:
        print(to_json(inv.to_json()))
    elif inv.process.state == ProcessState.SUCCESS:
        print(to_json(inv.result) if isinstance(inv.result, (dict, list)) else _compact(inv.result))
    if inv.process.state != ProcessState.SUCCESS:
        _err(f"{inv.process.spec.funcname} {inv.state} (process {inv.processid}):")
        print(inv.error.rstrip() or "(no error text)", file=sys.stderr)
        return 1
    return 0


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _cmd_logs(args: argparse.Namespace) -> int:
    from .invoke import follow_logs, invocation_of

    with _target(args) as target:
        for entry in follow_logs(target, args.processid, follow=args.follow):
            text = entry.message
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            sys.stdout.flush()
        if not args.follow:
            return 0
        # Following ends when the process has: say how, as `faas invoke` would have.
        inv = invocation_of(target, args.processid)
    return _print_outcome(inv, as_json=False)


def _cmd_ps(args: argparse.Namespace) -> int:
    from .invoke import STATE_NAMES, STATES, list_processes
    from .render import human_time, table, to_json

    states = list(STATES.values()) if args.state == "all" else [STATES[args.state]]
    etype = args.executor_type if args.executor_type is not None else args.settings.executortype
    with _target(args) as target:
        procs = list_processes(target, states, args.count, etype or None)
    rows = [{"processid": p.processid, "function": p.spec.funcname, "state": STATE_NAMES.get(p.state, str(p.state)),
             "submitted": human_time(p.submissiontime), "started": human_time(p.starttime),
             # A re-queued process keeps its earlier attempt's end time until it ends again.
             "ended": human_time(p.endtime) if p.state.is_final else "-"} for p in procs]
    if args.json:
        print(to_json(rows))
        return 0
    print(table(["process id", "function", "state", "submitted", "started", "ended"],
                [list(r.values()) for r in rows]))
    return 0


# -- parser -----------------------------------------------------------------------------------


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def _command(sub: Any, name: str, help: str, example: str, func: Callable[[argparse.Namespace], int],
             common: argparse.ArgumentParser, json_flag: bool = False) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, parents=[common], epilog=f"example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    p.set_defaults(func=func, needs_settings=True)
    return p


def build_parser(plugins: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faas", description="colonyfaas: serverless Python functions")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    keys = sub.add_parser("keys", help="create and inspect secp256k1 identities")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    keys_sub.add_parser("new", help="print a fresh private key and its id")
    key_id = keys_sub.add_parser("id", help="print the id of a private key")
    key_id.add_argument("prvkey")
    keys.set_defaults(func=_cmd_keys)

    dev = sub.add_parser(
        "dev", help="run the whole platform on this machine (server, S3, gateway, executors)",
        description="Start the server (SQLite), an S3 server (weed), the gateway and executors in the "
                    "foreground; write DATA_DIR/env; Ctrl-C stops everything.",
        epilog="example:\n  faas dev --deploy examples/convert.py\n  faas dev --executors 0   # queue only",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    dev.add_argument("--data-dir", default=".faas", help="state: database, S3 data, logs, env (default .faas)")
    dev.add_argument("--host", default="127.0.0.1", help="address every component listens on")
    dev.add_argument("--server-port", type=_positive(int), default=50080)
    dev.add_argument("--gateway-port", type=_positive(int), default=8000)
    dev.add_argument("--s3-port", type=_positive(int), default=8333)
    dev.add_argument("--executors", type=_non_negative_int, default=1, help="FaaS executors to run (0 allowed)")
    dev.add_argument("--concurrency", type=_positive(int), default=2, help="calls each executor runs at once")
    dev.add_argument("--deploy", action="append", default=[], metavar="FILE.py",
                     help="deploy this file once the stack answers (repeatable)")
    dev.add_argument("--local-store", action="store_true",
                     help="keep functions in DATA_DIR/files instead of starting an S3 server "
                          "(what happens anyway when weed is not installed)")
    dev.set_defaults(func=_cmd_dev)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", metavar="PATH", default=None,
                        help=f"env file with COLONIES_*/AWS_S3_* exports (default: {DEFAULT_ENV_FILE} "
                             "if it exists; '' for none); its values win over the environment")

    p = _command(sub, "deploy", "deploy the public functions of a Python file to /faas",
                 "  faas deploy examples/convert.py\n"
                 "  faas deploy tools.py --function resize --timeout 30 --memory 256 --requirements req.txt",
                 _cmd_deploy, common, json_flag=True)
    p.add_argument("file", metavar="FILE.py")
    p.add_argument("--function", action="append", metavar="NAME",
                   help="deploy only this function (repeatable; may name a private one)")
    p.add_argument("--timeout", type=_positive(float), metavar="S", help="wall-clock limit per call, seconds")
    p.add_argument("--retries", type=_non_negative_int, metavar="N", help="re-runs after a lost executor")
    p.add_argument("--memory", type=_positive(int), metavar="MB", help="memory limit per call, MiB")
    p.add_argument("--requirements", metavar="FILE", help="pip requirements the function needs")
    p.add_argument("--network", action="store_true",
                   help="allow network access (or set FAAS_NETWORK = True / [names] in the file)")
    p.add_argument("--dry-run", action="store_true", help="bundle and show versions without uploading")

    _command(sub, "ls", "list deployed functions", "  faas ls\n  faas ls --json", _cmd_ls, common,
             json_flag=True)

    p = _command(sub, "versions", "list the revisions of a function, newest first", "  faas versions convert",
                 _cmd_versions, common, json_flag=True)
    p.add_argument("name")

    p = _command(sub, "rm", "remove a function: every revision, stored bytes included", "  faas rm convert",
                 _cmd_rm, common)
    p.add_argument("name")

    p = _command(sub, "rollback", "make an earlier version the current one again",
                 "  faas versions convert\n  faas rollback convert 3f2a9c1b", _cmd_rollback, common)
    p.add_argument("name")
    p.add_argument("version", help="a version from `faas versions` (a unique prefix of 4+ digits is enough)")

    p = _command(sub, "invoke", "call a deployed function through the server and print its result as JSON",
                 "  faas invoke convert 21            # positional: convert(21)\n"
                 "  faas invoke convert celsius=21    # keyword: convert(celsius=21)\n"
                 "  faas invoke greet 007 name=Ada    # by the parameters' annotations (007 for a str stays\n"
                 "                                    # \"007\"); without one, JSON when valid JSON, else text\n"
                 "  faas invoke convert 21 --async    # print the process id and return",
                 _cmd_invoke, common, json_flag=True)
    p.add_argument("name")
    p.add_argument("values", nargs="*", metavar="VALUE|KEY=VALUE",
                   help="positional values, then KEY=VALUE keyword arguments")
    p.add_argument("--async", dest="async_", action="store_true", help="do not wait; print the process id")
    p.add_argument("--timeout", type=_positive(float), default=60.0, metavar="S",
                   help="seconds to wait for the result (default 60)")
    p.add_argument("--executor-type", default=None, help="executor type to run on (default faas-executor)")

    p = _command(sub, "logs", "print the logs of an invocation", "  faas logs 5e1f...c2 -f", _cmd_logs, common)
    p.add_argument("processid", metavar="PROCESS_ID")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing until the process ends, then print its result or error as `faas invoke` "
                        "does (exit 1 when it failed)")

    p = _command(sub, "ps", "list invocations (processes)", "  faas ps --state running", _cmd_ps, common,
                 json_flag=True)
    p.add_argument("--state", default="all", choices=["waiting", "running", "successful", "failed", "all"])
    p.add_argument("--count", type=_positive(int), default=100, help="at most this many per state (max 100)")
    p.add_argument("--executor-type", default=None, help="only this executor type ('' for every type)")

    for name in plugins:
        # Plugin subcommands parse their own arguments.
        sub.add_parser(name, help=f"the {name} component (see `faas {name} --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the CLI; `env` defaults to the process environment (read here and nowhere below)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Our own commands need no entry-point scan (it costs ~20 ms on every call).
    plugins = {} if args_list and args_list[0] in BUILTIN_COMMANDS else _plugins()
    if args_list and args_list[0] in plugins:
        run: Callable[[list[str]], int] = plugins[args_list[0]]()
        return int(run(args_list[1:]) or 0)
    parser = build_parser(sorted(plugins))
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if getattr(args, "needs_settings", False):
            args.settings = load_settings(os.environ if env is None else env, args.env_file)
        return int(args.func(args))
    except DeployerError as e:
        _err(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
