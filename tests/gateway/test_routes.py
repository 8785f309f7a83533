"""Every route and error of the gateway, end to end: in-process app → real server + S3 → executor."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.jsondepth import MAX_DEPTH
from sdk import ProcessState
from sdk.cfs import REVISION_ENV
from tests.harness.ports import free_port
from tests.harness.server import DEV_COLONY

from . import functions
from .conftest import RealExecutor, runs
from .helpers import CallbackReceiver, SilentServer, bundle_for, without_fast_path


async def test_get_converts_query_values_with_annotations(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    r = await http.get("/function/convert", params={"celsius": "21"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == pytest.approx(69.8)
    assert r.headers["X-Process-Id"] == body["processid"] and len(body["processid"]) == 64
    assert float(r.headers["X-Duration-Ms"]) > 0


async def test_post_body_forms(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    r = await http.post("/function/greet", json={"name": "ada"})
    assert (r.status_code, r.json()["result"]) == (200, "hello ada!")
    r = await http.post("/function/greet", json={"args": ["bob"], "kwargs": {"punctuation": "?"}})
    assert (r.status_code, r.json()["result"]) == (200, "hello bob?")
    r = await http.post("/function/echo", json=[1, "two", {"three": 3}])
    assert r.json()["result"] == {"args": [1, "two", {"three": 3}], "kwargs": {}}
    r = await http.get("/function/echo?a=1&b=x&c=[1,2]")
    assert r.json()["result"] == {"args": [], "kwargs": {"a": 1, "b": "x", "c": [1, 2]}}


async def test_integers_beyond_64_bits_arrive_and_come_back_exactly(http: httpx.AsyncClient,
                                                                    executor: RealExecutor) -> None:
    """orjson reads such literals as floats: through the gateway, the server, the executor and back
    every hop must keep them exact (one did not: 2**70 came back as 1.1805916207174113e+21)."""
    values = [2**70, -(2**64) - 1, 18446744073709551615, 2**63 - 1]
    r = await http.post("/function/echo", content=json.dumps(values), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert json.loads(r.text)["result"] == {"args": values, "kwargs": {}}
    assert b"1180591620717411303424" in r.content  # as an integer literal, not 1.18e+21
    r = await http.get("/function/echo?n=-1208925819614629174706176")  # a query value read as JSON
    assert json.loads(r.text)["result"] == {"args": [], "kwargs": {"n": -(2**80)}}


async def test_bad_parameters_are_400_naming_them(http: httpx.AsyncClient, deployed: Any) -> None:
    r = await http.get("/function/convert")
    assert r.status_code == 400 and "missing parameter: celsius" in r.json()["error"]
    r = await http.get("/function/convert?celsius=1&fahrenheit=2&kelvin=3")
    assert r.status_code == 400 and "unknown parameters: fahrenheit, kelvin" in r.json()["error"]
    r = await http.get("/function/convert?celsius=warm")
    assert r.status_code == 400 and "'celsius': cannot convert 'warm' to float" in r.json()["error"]
    r = await http.get("/function/convert?celsius=nan")  # was None in the function: a 500 from its traceback
    assert r.status_code == 400 and "'celsius': 'nan' is not a finite number" in r.json()["error"]
    r = await http.post("/function/greet", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = await http.get("/function/convert?celsius=1", headers={"X-Timeout": "soon"})
    assert r.status_code == 400 and "X-Timeout" in r.json()["error"]


def _both_paths(make_app: Any) -> tuple[Any, Any]:
    """The app as shipped (fastpath.FastCalls answers the call routes) and the app without it
    (FastAPI's routes answer them)."""
    return make_app(), without_fast_path(make_app())


@asynccontextmanager
async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield http


async def test_a_repeated_query_parameter_is_400_naming_it(make_app: Any, deployed: Any) -> None:
    """Was: `a` reached add() as the list [1, 2] (a TypeError, so a 500), and greet() said hello
    to "['x', 'y']". No executor here: a call that got through would wait (and 504)."""
    deployed.upload_bytes(DEV_COLONY, "/faas", "add", bundle_for(functions.add))
    quick = {"X-Timeout": "2"}
    for app in _both_paths(make_app):
        async with _client(app) as http:
            r = await http.get("/function/add?a=1&a=2&b=3", headers=quick)
            assert r.status_code == 400, r.text
            assert r.json() == {"error": "parameter 'a' is given 2 times in the query string; only a parameter "
                                         "annotated as a list may be repeated", "function": "add"}
            r = await http.post("/function/greet?name=x&name=y", headers=quick)
            assert r.status_code == 400 and "parameter 'name' is given 2 times" in r.json()["error"]
            r = await http.post("/async-function/add?a=1&b=2&b=3")
            assert r.status_code == 400 and "parameter 'b' is given 2 times" in r.json()["error"]
            # Was: the query's value won without a word.
            r = await http.post("/function/add?a=1", json={"a": 5, "b": 2}, headers=quick)
            assert r.status_code == 400, r.text
            assert r.json()["error"] == "parameter 'a' given both in the query string and in the body"
    assert await asyncio.to_thread(runs, deployed, "add") == 0
    assert await asyncio.to_thread(runs, deployed, "greet") == 0


async def test_json_nested_too_deep_is_400_and_nothing_is_submitted(make_app: Any, deployed: Any,
                                                                    executor: RealExecutor) -> None:
    """Was a 500: from pydantic serializing the submission (past ~250 levels), or from the json
    module's recursion (a body with an integer past 64 bits, which sdk.jsonx reads with json)."""
    json_body = {"Content-Type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000
    limit = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    message = f"request body nests deeper than {MAX_DEPTH} levels of arrays and objects"
    accepted = 0
    for app in _both_paths(make_app):
        async with _client(app) as http:
            for body in (b"[" * 100_000 + str(2**70).encode() + b"]" * 100_000, deep,
                         b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), b'{"a":' * 300 + b"1" + b"}" * 300):
                r = await http.post("/function/echo", content=body, headers=json_body)
                assert (r.status_code, r.json()) == (400, {"error": message}), r.text[:300]
            r = await http.post("/async-function/echo", content=deep, headers=json_body)
            assert (r.status_code, r.json()) == (400, {"error": message})
            r = await http.get("/function/echo?x=" + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
            assert r.status_code == 400, r.text[:300]
            assert f"parameter 'x': value nests deeper than {MAX_DEPTH} levels" in r.json()["error"]
            # As deep as allowed: through the server, the executor and back.
            r = await http.post("/function/echo", content=limit, headers=json_body)
            assert r.status_code == 200, r.text[:300]
            assert r.json()["result"] == {"args": json.loads(limit), "kwargs": {}}
            accepted += 1
    assert await asyncio.to_thread(runs, deployed, "echo") == accepted


async def test_unknown_function_is_404(http: httpx.AsyncClient, deployed: Any) -> None:
    r = await http.get("/function/nosuchfunction")
    assert r.status_code == 404
    assert r.json()["error"] == "no function named 'nosuchfunction' is deployed"


async def test_function_error_is_500_with_traceback(http: httpx.AsyncClient, app: Any,
                                                    executor: RealExecutor) -> None:
    started = time.monotonic()
    r = await http.get("/function/boom", params={"reason": "it broke"})
    took = time.monotonic() - started
    assert r.status_code == 500
    body = r.json()
    assert "Traceback" in body["error"] and "ValueError: it broke" in body["error"]
    assert len(body["processid"]) == 64 and r.headers["X-Process-Id"] == body["processid"]
    # Against our own server the gateway subscribes once per call (SUCCESS), and the failure
    # still arrived through that one subscription, not through the get_process made at the
    # call's deadline (settings.timeout = 20 s).
    assert app.state.gateway.waiter.states == (ProcessState.SUCCESS,)
    assert took < app.state.gateway.settings.timeout
    # ... and submits on the pubsub socket (submitandsubscribemsg), not over HTTP.
    assert app.state.gateway.waiter.submit_on_socket and app.state.gateway.waiter.socket_submits == 1


async def test_a_submission_too_large_for_the_socket_goes_over_http(http: httpx.AsyncClient, app: Any,
                                                                   executor: RealExecutor) -> None:
    from gateway.pubsub import MAX_SOCKET_SUBMIT

    waiter = app.state.gateway.waiter
    small = await http.post("/function/echo", json={"pad": "p"})
    big = await http.post("/function/echo", json={"pad": "p" * (MAX_SOCKET_SUBMIT + 1)})
    assert small.status_code == 200 and big.status_code == 200, big.text[:300]
    assert big.json()["result"]["kwargs"]["pad"] == "p" * (MAX_SOCKET_SUBMIT + 1)
    assert waiter.socket_submits == 1 and waiter.pending == 0


async def test_timeout_is_504_and_the_invocation_stays_queued(http: httpx.AsyncClient, deployed: Any) -> None:
    # No executor: nothing can run the call.
    r = await http.get("/function/convert?celsius=5", headers={"X-Timeout": "0.3"})
    assert r.status_code == 504, r.text
    body = r.json()
    pid = body["processid"]
    assert body["status_url"] == f"/processes/{pid}" and "still queued" in body["error"]
    status = await http.get(f"/processes/{pid}")
    assert status.status_code == 200 and status.json()["state"] == "waiting"


async def test_queued_invocation_finishes_when_an_executor_comes(http: httpx.AsyncClient, app: Any, server: Any,
                                                                 s3_server: Any, deployed: Any,
                                                                 tmp_path: Any) -> None:
    r = await http.get("/function/convert?celsius=100", headers={"X-Timeout": "0.2"})
    assert r.status_code == 504
    pid = r.json()["processid"]
    ex = RealExecutor(server, s3_server, tmp_path / "late-executor").start()
    try:
        # Wait on the gateway's own shared waiter (event-driven, no polling loop in the test).
        assert await app.state.gateway.wait(pid, 60) is not None
    finally:
        await asyncio.to_thread(ex.stop)
    view = (await http.get(f"/processes/{pid}")).json()
    assert view["state"] == "successful" and view["result"] == 212
    assert view["function"] == "convert" and view["submitted"] and view["started"] and view["ended"]


async def test_server_unreachable_is_503(make_app: Any, deployed: Any) -> None:
    app = make_app(server_port=free_port())
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        r = await http.get("/function/convert?celsius=1")
        assert r.status_code == 503 and "unreachable" in r.json()["error"]
        r = await http.get("/healthz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        r = await http.get("/processes/" + "0" * 64)
        assert r.status_code == 503
        r = await http.get("/metrics")
        assert r.status_code == 200 and "faas_gateway_server_up 0" in r.text


async def test_healthz_answers_503_in_time_when_the_server_never_answers(make_app: Any) -> None:
    """Was: the RPC's own timeout (10 s) before the 503."""
    silent = await SilentServer().start()
    app = make_app(server_port=silent.port, health_timeout=1.0)
    try:
        async with _client(app) as http:
            for method in ("GET", "HEAD"):
                started = time.monotonic()
                r = await http.request(method, "/healthz")
                took = time.monotonic() - started
                assert r.status_code == 503, r.text
                assert took < 5, f"{method} /healthz took {took:.1f} s"
                if method == "GET":
                    assert r.json() == {"status": "unavailable",
                                        "error": "health check: colonies server did not answer in time (1 s)"}
    finally:
        await silent.stop()
    assert silent.connections  # the gateway did connect: the server never answered


async def test_metrics_answer_in_time_when_the_server_never_answers(make_app: Any) -> None:
    """Was: the RPC timeout of each of its queries (3 x 10 s here) before any answer."""
    silent = await SilentServer().start()
    app = make_app(server_port=silent.port, health_timeout=1.0, rpc_timeout=10.0)
    try:
        async with _client(app) as http:
            started = time.monotonic()
            r = await http.get("/metrics")
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            assert "faas_gateway_server_up 0" in r.text
            assert took < 5, f"/metrics took {took:.1f} s"
    finally:
        await silent.stop()
    assert silent.connections  # it did ask: the server never answered


async def test_async_invocation_with_callback_retried(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    receiver = await CallbackReceiver(statuses=[503, 500, 200]).start()
    try:
        r = await http.post("/async-function/convert?celsius=21", headers={"X-Callback-Url": receiver.url})
        assert r.status_code == 202, r.text
        body = r.json()
        pid = body["processid"]
        assert body["status_url"].endswith(f"/processes/{pid}")
        await asyncio.wait_for(receiver.delivered.wait(), 30)
        assert [status for _, _, status in receiver.received] == [503, 500, 200]
        headers, payload, _ = receiver.received[-1]
        assert headers["x-process-id"] == pid
        assert payload["state"] == "successful" and payload["result"] == pytest.approx(69.8)
        status = await http.get(body["status_url"].removeprefix("http://gateway"))
        assert status.json()["state"] == "successful"
    finally:
        await receiver.stop()


async def test_async_errors(http: httpx.AsyncClient, deployed: Any) -> None:
    r = await http.post("/async-function/convert?celsius=1", headers={"X-Callback-Url": "ftp://x/y"})
    assert r.status_code == 400 and "X-Callback-Url" in r.json()["error"]
    r = await http.post("/async-function/convert")
    assert r.status_code == 400 and "missing parameter: celsius" in r.json()["error"]
    r = await http.post("/async-function/nope")
    assert r.status_code == 404


async def test_process_lookup_errors(http: httpx.AsyncClient, deployed: Any) -> None:
    r = await http.get("/processes/" + "ab" * 32)
    assert r.status_code == 404 and "no process" in r.json()["error"]
    r = await http.get("/processes/not-an-id")
    assert r.status_code == 404
    r = await http.get("/processes/" + "ab" * 32 + "/logs")
    assert r.status_code == 404


async def test_failed_process_view_has_the_error(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    pid = (await http.get("/function/boom")).json()["processid"]
    view = (await http.get(f"/processes/{pid}")).json()
    assert view["state"] == "failed" and "ValueError: kaboom" in view["error"] and "result" not in view


async def test_logs(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    r = await http.get("/function/logme?n=3")
    assert r.status_code == 200 and r.json()["result"] == 3
    pid = r.json()["processid"]
    logs = (await http.get(f"/processes/{pid}/logs")).json()
    assert logs["processid"] == pid
    text = "".join(line["message"] for line in logs["logs"])
    assert text.index("line 0") < text.index("line 1") < text.index("line 2")
    assert (await http.get(f"/processes/{pid}/logs?count=1000")).status_code == 400


async def test_idempotency_key_returns_the_same_invocation(http: httpx.AsyncClient, executor: RealExecutor,
                                                           deployed: Any) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first, second = await asyncio.gather(
        http.get("/function/convert?celsius=30", headers=headers),
        http.get("/function/convert?celsius=30", headers=headers),
    )
    third = await http.get("/function/convert?celsius=30", headers=headers)
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.json() == second.json() == third.json()
    assert await asyncio.to_thread(runs, deployed, "convert") == 1
    other = await http.get("/function/convert?celsius=31", headers=headers)
    assert other.status_code == 422 and "different arguments" in other.json()["error"]
    # Per function: the same key for another function is a new invocation.
    r = await http.get("/function/greet?name=x", headers=headers)
    assert r.status_code == 200 and r.json()["processid"] != first.json()["processid"]
    # Async invocations honour it too.
    a1 = await http.post("/async-function/greet?name=y", headers={"Idempotency-Key": "k2"})
    a2 = await http.post("/async-function/greet?name=y", headers={"Idempotency-Key": "k2"})
    assert a1.json()["processid"] == a2.json()["processid"]


async def test_function_listing_and_description(http: httpx.AsyncClient, deployed: Any) -> None:
    listing = (await http.get("/functions")).json()["functions"]
    by_name = {f["name"]: f for f in listing}
    assert set(by_name) == {"convert", "greet", "boom", "echo", "logme"}
    assert by_name["convert"]["signature"] == "convert(celsius: float)"
    assert by_name["convert"]["summary"] == "Celsius to Fahrenheit."
    deployed.upload_bytes(DEV_COLONY, "/faas", "greet", bundle_for(functions.greet))
    info = (await http.get("/functions/greet")).json()
    assert info["doc"] == "Say hello."
    assert [p["name"] for p in info["parameters"]] == ["name", "punctuation"]
    assert info["parameters"][1] == {"name": "punctuation", "kind": "POSITIONAL_OR_KEYWORD", "required": False,
                                     "annotation": "str", "default": "!"}
    assert [v["revision"] for v in info["versions"]] == [2, 1]
    assert (await http.get("/functions/nope")).status_code == 404


async def test_redeploy_with_a_new_signature_is_seen_at_once(http: httpx.AsyncClient, executor: RealExecutor,
                                                              deployed: Any) -> None:
    assert (await http.get("/function/convert?celsius=0")).json()["result"] == 32

    def convert(kelvin: float) -> float:
        return kelvin - 273.15

    deployed.upload_bytes(DEV_COLONY, "/faas", "convert", bundle_for(convert))
    r = await http.get("/function/convert?kelvin=273.15")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == pytest.approx(0)


async def test_a_call_carries_the_revision_its_arguments_were_bound_against(
        http: httpx.AsyncClient, executor: RealExecutor, deployed: Any) -> None:
    r = await http.get("/function/convert?celsius=0")
    assert r.status_code == 200, r.text
    spec = deployed.get_process(r.json()["processid"]).spec
    assert spec.env[REVISION_ENV] == deployed.get_file(DEV_COLONY, "/faas", "convert")[0].checksum


async def test_bare_source_file_passes_values_through(http: httpx.AsyncClient, executor: RealExecutor,
                                                      deployed: Any) -> None:
    deployed.upload_bytes(DEV_COLONY, "/faas", "plain", b"def plain(x):\n    return x\n")
    info = (await http.get("/functions/plain")).json()
    assert info["signature"] is None and info["parameters"] is None


async def test_auth(make_app: Any, deployed: Any) -> None:
    app = make_app(api_keys=frozenset({"s3cret"}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        r = await http.get("/functions")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert "missing Authorization" in r.json()["error"]
        r = await http.get("/function/convert?celsius=1", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"] == "invalid API key"
        r = await http.get("/functions", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200
        # HEAD as GET: the probes open, the rest behind the key.
        assert (await http.head("/healthz")).status_code == 200
        assert (await http.head("/metrics")).status_code == 200
        assert (await http.head("/functions")).status_code == 401
        assert (await http.head("/functions", headers={"Authorization": "Bearer s3cret"})).status_code == 200


async def test_metrics_contents(http: httpx.AsyncClient, executor: RealExecutor) -> None:
    assert (await http.get("/function/convert?celsius=1")).status_code == 200
    assert (await http.get("/function/boom")).status_code == 500
    assert (await http.get("/function/convert")).status_code == 400
    text = (await http.get("/metrics")).text
    lines = text.splitlines()
    assert 'faas_gateway_invocations_total{function="convert",outcome="success"} 1' in lines
    assert 'faas_gateway_invocations_total{function="boom",outcome="error"} 1' in lines
    assert 'faas_gateway_invocations_total{function="convert",outcome="bad_request"} 1' in lines
    assert 'faas_gateway_invocation_duration_seconds_count{function="convert"} 1' in lines
    assert 'faas_gateway_invocation_duration_seconds_count{function="boom"} 1' in lines
    assert "faas_gateway_in_flight 0" in lines
    assert 'faas_waiting_processes{executortype="faas-executor"} 0' in lines
    assert "faas_gateway_server_up 1" in lines


async def test_waiting_gauge_counts_queued_processes(http: httpx.AsyncClient, deployed: Any) -> None:
    for celsius in (1, 2, 3):
        assert (await http.post(f"/async-function/convert?celsius={celsius}")).status_code == 202
    lines = (await http.get("/metrics")).text.splitlines()
    assert 'faas_waiting_processes{executortype="faas-executor"} 3' in lines
    assert "faas_colony_waiting_processes 3" in lines


async def test_concurrent_calls_share_one_pubsub_connection(http: httpx.AsyncClient, app: Any,
                                                            executor: RealExecutor) -> None:
    replies = await asyncio.gather(*(http.get(f"/function/convert?celsius={c}") for c in range(20)))
    assert [r.json()["result"] for r in replies] == [pytest.approx(c * 9 / 5 + 32) for c in range(20)]
    waiter = app.state.gateway.waiter
    assert waiter.sockets_opened == 1 and waiter.pending == 0


async def test_health_docs_and_openapi(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert (await http.get("/docs")).status_code == 200
    spec = (await http.get("/openapi.json")).json()
    assert {"/function/{name}", "/async-function/{name}", "/processes/{processid}", "/processes/{processid}/logs",
            "/functions", "/functions/{name}", "/healthz", "/metrics"} <= set(spec["paths"])
    # The read routes are published with HEAD too; HEAD /function/{name} (a 405) is not.
    reads = {"/processes/{processid}", "/processes/{processid}/logs", "/functions", "/functions/{name}", "/healthz",
             "/metrics"}
    assert {path for path, ops in spec["paths"].items() if "head" in ops} == reads
    assert all(set(spec["paths"][path]) == {"get", "head"} for path in reads)
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_head_answers_like_get_without_a_body(http: httpx.AsyncClient, deployed: Any) -> None:
    pid = (await http.post("/async-function/greet?name=x")).json()["processid"]
    for path in ("/healthz", "/functions", "/functions/convert", "/functions/nope", "/metrics", f"/processes/{pid}",
                 f"/processes/{pid}/logs", "/processes/" + "ab" * 32, "/docs", "/openapi.json"):
        got, head = await http.get(path), await http.head(path)
        assert head.status_code == got.status_code, path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.content == b"", path
    # A HEAD never runs a function: 405, and nothing submitted.
    for path in ("/function/convert?celsius=1", "/function/nosuchfunction"):
        r = await http.head(path)
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST", path
        assert r.content == b"" and "content-type" not in r.headers and r.headers["content-length"] == "0"
    # Nor does any other method; each 405 names both methods that do (it used to name only GET).
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        r = await http.request(method, "/function/convert?celsius=1", json={"celsius": 1})
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST", method
        assert r.json() == {"error": f"{method} is not allowed on /function/{{name}}: use GET or POST"}
    assert await asyncio.to_thread(runs, deployed, "convert") == 0



async def test_function_metadata_is_fetched_once(http: httpx.AsyncClient, app: Any, executor: RealExecutor) -> None:
    for celsius in range(5):
        assert (await http.get(f"/function/convert?celsius={celsius}")).status_code == 200
    # Re-checks after the ttl compare the revision; the bundle is downloaded again only on a new one.
    assert app.state.gateway.catalog.fetches == 1


async def test_body_over_the_limit_is_413(make_app: Any, deployed: Any) -> None:
    app = make_app(max_body=1024)

    async def streamed() -> Any:
        for _ in range(4):
            yield b"x" * 512

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        r = await http.post("/function/echo", json={"pad": "p" * 2000})
        assert r.status_code == 413 and "exceeds the limit of 1024 bytes" in r.json()["error"]
        r = await http.post("/async-function/echo", content=streamed())  # no Content-Length
        assert r.status_code == 413
        r = await http.post("/function/greet", json={"name": "x" * 100}, headers={"X-Timeout": "0.1"})
        assert r.status_code == 504  # under the limit: accepted (no executor here)
