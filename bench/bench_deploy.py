"""`faas deploy` benchmark: bundling, deploying, redeploying and listing, against baselines in the same run.

Starts, on 127.0.0.1: a Colonies server (`python -m colonies_server start`, SQLite, --dev identities)
and S3 (weed mini). Then measures, each repeated `--repeat` times (median and p90):

- bundling only (pure: import the file, decide, serialize, hash): examples/convert.py (source) and
  examples/closure_example.py (4 functions, 3 of them cloudpickle);
- `faas deploy FILE` in-process (the CLI path: settings, client, version check, upload):
  a new function each time, and the same file again (state `unchanged`, nothing uploaded);
- `faas deploy FILE` as a new process (what a user waits for: interpreter start and imports too),
  wall time and the process's own CPU time (wall time is at the mercy of a busy machine);
- `faas ls` with `--functions` functions deployed;
- the SDK client's construction alone (part of every CLI command's fixed cost);
- baselines: the SDK's bare `upload_bytes` of the same bundle bytes (one S3 PUT + one addfilemsg,
  the floor of any deploy), and pycolonies' `upload_data` of the tutorial's source (the ColonyOS
  tutorial's deploy step).

    .venv/bin/python bench/bench_deploy.py [--repeat 20] [--functions 20]

Rounds are interleaved (every measurement once per round) so a busy machine weighs on all of
them alike. Writes bench/results/deploy.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deployer.bundle import Limits, build_bundle  # noqa: E402
from deployer.cli import main as faas_main  # noqa: E402
from deployer.inspect_functions import find_functions, load_source_file, unload  # noqa: E402
from sdk import Colonies, Config, S3Config, S3Store  # noqa: E402
from tests.harness.ports import free_port, wait_port  # noqa: E402
from tests.harness.s3 import WeedProcess  # noqa: E402
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY  # noqa: E402

EXAMPLES = ROOT / "examples"
TUTORIAL_SOURCE = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 3), "p90_ms": round(p90 * 1000, 3),
            "min_ms": round(ordered[0] * 1000, 3), "n": len(ordered)}


def timed(fn: Callable[[int], object], repeat: int, warmup: int = 1) -> dict[str, float]:
    for i in range(warmup):
        fn(-1 - i)
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return summary(samples)


def bundle_file(path: Path) -> int:
    """Bundle every function of a file; returns the total bundle bytes."""
    source = load_source_file(path)
    try:
        return sum(len(build_bundle(source, f, Limits()).to_bytes()) for f in find_functions(source))
    finally:
        unload(source)


@contextlib.contextmanager
def stack(work: Path) -> Iterator[dict[str, str]]:
    weed = WeedProcess(work / "weed")
    s3 = weed.start()
    port = free_port()
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "colonies_server", "start", "--host", "127.0.0.1", "--port",
                               str(port), "--db", f"sqlite:///{work / 'colonies.db'}", "--dev"],
                              stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        wait_port(port, 30)
        yield {"COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": str(port),
               "COLONIES_SERVER_TLS": "false", "COLONIES_COLONY_NAME": DEV_COLONY,
               "COLONIES_COLONY_PRVKEY": COLONY_PRVKEY, "COLONIES_PRVKEY": DEV_PRVKEY, **s3.env()}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        weed.stop()


def faas(env: dict[str, str], *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = faas_main([*argv, "--env-file", ""], env=env)
    if code != 0:
        raise RuntimeError(f"faas {' '.join(argv)} failed: {err.getvalue()}")
    return out.getvalue()


def run(repeat: int, functions: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["bundle_source_convert"] = timed(lambda _: bundle_file(EXAMPLES / "convert.py"), repeat)
    results["bundle_cloudpickle_closure_example_4_functions"] = timed(
        lambda _: bundle_file(EXAMPLES / "closure_example.py"), repeat)
    sizes = {"convert.py": bundle_file(EXAMPLES / "convert.py"),
             "closure_example.py": bundle_file(EXAMPLES / "closure_example.py")}

    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        with stack(work) as env:
            cfg = S3Config(endpoint=env["AWS_S3_ENDPOINT"], accesskey=env["AWS_S3_ACCESSKEY"],
                           secretkey=env["AWS_S3_SECRETKEY"], bucket=env["AWS_S3_BUCKET"], region=env["AWS_S3_REGION"])
            client = Colonies(host="127.0.0.1", port=int(env["COLONIES_SERVER_PORT"]), prvkey=DEV_PRVKEY,
                              store=S3Store(cfg))
            template = (EXAMPLES / "convert.py").read_text()

            def new_file(i: int) -> Path:
                path = work / f"fn_{i + 1000}.py"
                path.write_text(template.replace("def convert(", f"def convert_{i + 1000}("))
                return path

            source = load_source_file(new_file(-100))
            try:
                bundle_bytes = build_bundle(source, find_functions(source)[0], Limits()).to_bytes()
            finally:
                unload(source)
            unchanged = new_file(-50)
            faas(env, "deploy", str(unchanged))
            cli = [sys.executable, "-c", "import sys; from deployer.cli import main; sys.exit(main())"]
            proc_env = {**os.environ, **env}
            config = Config.from_env(env)

            from pycolonies import Colonies as PycColonies

            pyc = PycColonies("127.0.0.1", int(env["COLONIES_SERVER_PORT"]), False)

            def pyc_upload(i: int) -> None:
                saved = dict(os.environ)
                os.environ.update(env)  # pycolonies reads AWS_S3_* from the process environment
                try:
                    pyc.upload_data(DEV_COLONY, DEV_PRVKEY, filename=f"tutorial_{i}", data=TUTORIAL_SOURCE.encode(),
                                    label="/faas-tutorial")
                finally:
                    os.environ.clear()
                    os.environ.update(saved)

            def new_client(_: int) -> None:
                Colonies.from_config(config).close_connections()

            def deploy_process(i: int) -> float:
                path = new_file(10_000 + i)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([*cli, "deploy", str(path), "--env-file", ""], env=proc_env, cwd=work, check=True,
                               capture_output=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

            # Interleaved rounds: on a busy machine every measurement sees the same load, so the
            # ratios to the baseline stay meaningful even when absolute times wander.
            steps: dict[str, Callable[[int], object]] = {
                "baseline_sdk_upload_bytes": lambda i: client.upload_bytes(
                    DEV_COLONY, "/bench-baseline", f"baseline_{i}", bundle_bytes),
                "baseline_pycolonies_upload_data": pyc_upload,
                "sdk_client_construction": new_client,
                "deploy_new_in_process": lambda i: faas(env, "deploy", str(new_file(i))),
                "deploy_unchanged_in_process": lambda _: faas(env, "deploy", str(unchanged)),
            }
            samples: dict[str, list[float]] = {k: [] for k in steps}
            process_wall: list[float] = []
            process_cpu: list[float] = []
            for i in range(-2, repeat):
                for name, step in steps.items():
                    start = time.perf_counter()
                    step(i + 1000)
                    if i >= 0:
                        samples[name].append(time.perf_counter() - start)
                if i >= 0 and i % 4 == 0:
                    start = time.perf_counter()
                    cpu = deploy_process(i)
                    process_wall.append(time.perf_counter() - start)
                    process_cpu.append(cpu)
            results.update({name: summary(values) for name, values in samples.items()})
            results["deploy_new_new_process"] = summary(process_wall)
            # CPU time of the `faas` process itself: much less sensitive to a busy machine than wall time.
            results["deploy_new_new_process_cpu"] = summary(process_cpu)

            for i in range(functions - len(json.loads(faas(env, "ls", "--json")))):
                faas(env, "deploy", str(new_file(20_000 + i)))
            count = len(json.loads(faas(env, "ls", "--json")))
            results[f"ls_{count}_functions"] = timed(lambda _: faas(env, "ls"), max(3, repeat // 2))
            client.close_connections()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = results["baseline_sdk_upload_bytes"]["median_ms"]
    ratios = {k: round(v["median_ms"] / floor, 2) for k, v in results.items() if k.startswith("deploy_")}
    return {"results": results, "bundle_bytes": sizes, "ratio_to_sdk_upload_median": ratios}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--functions", type=int, default=20, help="functions deployed when timing `faas ls`")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "deploy.json"))
    args = ap.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    report = run(args.repeat, args.functions)
    report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                         "loadavg_1m_at_start": load_before, "loadavg_1m_at_end": round(os.getloadavg()[0], 2)}
    report["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"{'measurement':<48} {'median ms':>10} {'p90 ms':>10} {'x sdk upload':>13}")
    for name, r in report["results"].items():
        ratio = report["ratio_to_sdk_upload_median"].get(name, "")
        print(f"{name:<48} {r['median_ms']:>10.2f} {r['p90_ms']:>10.2f} {ratio!s:>13}")
    print(f"bundle bytes: {report['bundle_bytes']}; machine: {report['machine']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
