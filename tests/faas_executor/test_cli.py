"""`faas executor start` argument and environment handling (no server needed)."""

from __future__ import annotations

import pytest

from faas_executor.cli import build_parser, main, settings_from
from faas_executor.config import DEFAULT_TYPE, ExecutorSettings

ENV = {"COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": "50099", "COLONIES_COLONY_NAME": "dev",
       "COLONIES_COLONY_PRVKEY": "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514"}


def test_defaults_register_a_uniquely_named_faas_executor() -> None:
    settings, config = settings_from(build_parser().parse_args(["start"]), ENV)
    assert settings.executortype == DEFAULT_TYPE
    assert settings.executorname.startswith(DEFAULT_TYPE + "-")
    assert settings.colony_prvkey == ENV["COLONIES_COLONY_PRVKEY"]
    assert (settings.concurrency, settings.prefetch) == (3, 10)
    assert settings.pool_settings().size == 3  # prefetch adds loops, not workers
    assert config.port == 50099


def test_options_reach_the_settings() -> None:
    args = build_parser().parse_args(["start", "--concurrency", "4", "--name", "e1", "--type", "gpu-faas",
                                      "--memory", "512", "--cpu", "5", "--uid-base", "none", "--no-seccomp",
                                      "--prefetch", "0"])
    settings, _ = settings_from(args, ENV)
    pool = settings.pool_settings()
    assert (settings.executorname, settings.executortype, settings.concurrency) == ("e1", "gpu-faas", 4)
    assert settings.prefetch == 0
    assert (pool.size, pool.memory_mb, pool.cpu_seconds, pool.uid_base, pool.seccomp) == (4, 512, 5, None, False)


def test_with_the_colony_key_a_fresh_identity_is_registered() -> None:
    # COLONIES_PRVKEY next to the colony key is the user's key (faas dev's env file), not ours.
    env = {**ENV, "COLONIES_PRVKEY": "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"}
    settings, _ = settings_from(build_parser().parse_args(["start"]), env)
    assert settings.prvkey == "" and settings.colony_prvkey


def test_an_already_registered_executor_key_is_used_without_the_colony_key() -> None:
    env = {k: v for k, v in ENV.items() if k != "COLONIES_COLONY_PRVKEY"}
    env["COLONIES_PRVKEY"] = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
    settings, _ = settings_from(build_parser().parse_args(["start", "--name", "known"]), env)
    assert settings.prvkey == env["COLONIES_PRVKEY"] and not settings.colony_prvkey


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"colonyname": ""}, "colony name is required"),
    ({"colonyname": "dev"}, "either the colony key"),
    ({"colonyname": "dev", "prvkey": "k", "concurrency": 0}, "concurrency must be at least 1"),
    ({"colonyname": "dev", "prvkey": "k", "prefetch": -1}, "prefetch must be 0 or more"),
    ({"colonyname": "dev", "prvkey": "k", "lease": 0}, "lease must be positive"),
])
def test_bad_settings_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExecutorSettings(**kwargs)  # type: ignore[arg-type]


def test_missing_keys_exit_2_with_a_message(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLONIES_COLONY_PRVKEY", "COLONIES_PRVKEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLONIES_COLONY_NAME", "dev")
    assert main(["start"]) == 2
    assert "COLONIES_COLONY_PRVKEY" in capsys.readouterr().err
