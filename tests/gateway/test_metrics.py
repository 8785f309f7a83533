"""Prometheus text rendering of the gateway's metrics (pure)."""

from __future__ import annotations

from gateway.metrics import Metrics, Outcome


def test_counters_histogram_and_gauges_render() -> None:
    m = Metrics(buckets=(0.01, 0.1, 1.0))
    m.record("convert", Outcome.SUCCESS, 0.005)
    m.record("convert", Outcome.SUCCESS, 0.05)
    m.record("convert", Outcome.ERROR, 2.0)
    m.record("other", Outcome.NOT_FOUND)
    m.in_flight = 3
    text = m.render({"faas-executor": 7, "": 9}, server_up=True)
    lines = text.splitlines()
    assert 'faas_gateway_invocations_total{function="convert",outcome="success"} 2' in lines
    assert 'faas_gateway_invocations_total{function="convert",outcome="error"} 1' in lines
    # Names nobody deployed (or unknowable while the server is away) share one series: a caller
    # trying random names must not grow /metrics without bound.
    m.record("x" * 255, Outcome.NOT_FOUND)
    m.record("convert", Outcome.UNAVAILABLE)
    text = m.render({"faas-executor": 7, "": 9}, server_up=True)
    lines = text.splitlines()
    assert 'faas_gateway_invocations_total{function="(unknown)",outcome="not_found"} 2' in lines
    assert 'faas_gateway_invocations_total{function="(unknown)",outcome="unavailable"} 1' in lines
    assert not any("x" * 255 in line or 'function="other"' in line for line in lines)
    assert 'faas_gateway_invocation_duration_seconds_bucket{function="convert",le="0.01"} 1' in lines
    assert 'faas_gateway_invocation_duration_seconds_bucket{function="convert",le="0.1"} 2' in lines
    assert 'faas_gateway_invocation_duration_seconds_bucket{function="convert",le="1.0"} 2' in lines
    assert 'faas_gateway_invocation_duration_seconds_bucket{function="convert",le="+Inf"} 3' in lines
    assert 'faas_gateway_invocation_duration_seconds_count{function="convert"} 3' in lines
    assert 'faas_gateway_invocation_duration_seconds_sum{function="convert"} 2.055' in lines
    assert "faas_gateway_in_flight 3" in lines
    assert 'faas_waiting_processes{executortype="faas-executor"} 7' in lines
    assert "faas_colony_waiting_processes 9" in lines
    assert "faas_gateway_server_up 1" in lines
    assert "# TYPE faas_gateway_invocation_duration_seconds histogram" in lines
    assert text.endswith("\n")


def test_label_values_are_escaped() -> None:
    m = Metrics()
    m.record('we"ird\\name\n', Outcome.SUCCESS)
    assert 'function="we\\"ird\\\\name\\n"' in m.render()


def test_without_server_data_the_waiting_gauge_is_left_out() -> None:
    text = Metrics().render(None)
    assert "faas_waiting_processes" not in text
    assert "faas_gateway_in_flight 0" in text
