"""Run a workflow of deployed functions: two fetches, two conversions, one report.

    faas deploy examples/pipeline.py
    set -a; source .faas/env; set +a
    python examples/workflow.py stockholm lund

A child process receives its parents' outputs, in order, as its arguments (the Colonies
workflow rule: a child's input is its parents' outputs concatenated).
"""

from __future__ import annotations

import sys

from sdk import Colonies, FuncSpec, WorkflowSpec

EXECUTOR_TYPE = "faas-executor"


def node(name: str, funcname: str, colony: str, args: list | None = None, after: list[str] | None = None) -> FuncSpec:
    return FuncSpec.model_validate({
        "nodename": name, "funcname": funcname, "args": args or [], "maxexectime": 30, "maxretries": 1,
        "conditions": {"colonyname": colony, "executortype": EXECUTOR_TYPE, "dependencies": after or []},
    })


def main(city_a: str, city_b: str) -> int:
    with Colonies.from_env() as client:
        colony = client.colonyname
        graph = client.submit_workflow(WorkflowSpec(colonyname=colony, functionspecs=[
            node("fetch-a", "fetch", colony, [city_a]),
            node("fetch-b", "fetch", colony, [city_b]),
            node("convert-a", "to_fahrenheit", colony, after=["fetch-a"]),
            node("convert-b", "to_fahrenheit", colony, after=["fetch-b"]),
            node("report", "report", colony, after=["convert-a", "convert-b"]),
        ]))
        last = next(p for p in (client.get_process(pid) for pid in graph.processids)
                    if p.spec.nodename == "report")
        done = client.wait(last, timeout=60)
        if done.errors:
            print("\n".join(done.errors), file=sys.stderr)
            return 1
        print(done.output[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(*(sys.argv[1:3] if len(sys.argv) >= 3 else ["stockholm", "lund"])))
