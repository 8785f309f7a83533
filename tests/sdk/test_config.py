"""Config.from_env over a given mapping, env files, and the round trip back to env variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk import Colonies
from sdk.config import DEFAULT_PORT, Config, S3Config
from sdk.stores import S3Store

DEV = {
    "COLONIES_SERVER_HOST": "colonies.example",
    "COLONIES_SERVER_PORT": "50081",
    "COLONIES_SERVER_TLS": "true",
    "COLONIES_COLONY_NAME": "dev",
    "COLONIES_COLONY_PRVKEY": "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514",
    "COLONIES_PRVKEY": "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05",
    "COLONIES_EXECUTOR_NAME": "dev-docker",
    "AWS_S3_ENDPOINT": "localhost:9000",
    "AWS_S3_ACCESSKEY": "ak",
    "AWS_S3_SECRETKEY": "sk",
    "AWS_S3_BUCKET": "colonies-prod",
    "AWS_S3_TLS": "false",
    "AWS_S3_SKIPVERIFY": "false",
    "AWS_S3_REGION": "",
}


def test_reads_every_ecosystem_name() -> None:
    cfg = Config.from_env(DEV)
    assert (cfg.host, cfg.port, cfg.tls) == ("colonies.example", 50081, True)
    assert cfg.colonyname == "dev" and cfg.executorname == "dev-docker"
    assert cfg.prvkey == DEV["COLONIES_PRVKEY"] and cfg.colony_prvkey == DEV["COLONIES_COLONY_PRVKEY"]
    assert cfg.s3 == S3Config("localhost:9000", "ak", "sk", "colonies-prod", False, False, "")
    assert cfg.s3 is not None and (cfg.s3.host, cfg.s3.port) == ("localhost", 9000)


def test_defaults_and_no_s3() -> None:
    cfg = Config.from_env({})
    assert (cfg.host, cfg.port, cfg.tls, cfg.s3) == ("localhost", DEFAULT_PORT, False, None)


@pytest.mark.parametrize(("env", "tls"), [
    ({"COLONIES_SERVER_TLS": "false"}, False),
    ({"COLONIES_SERVER_TLS": "TRUE"}, True),
    ({"COLONIES_TLS": "true"}, True),  # the v1.9 env files' spelling
    ({"COLONIES_SERVER_TLS": "false", "COLONIES_TLS": "true"}, False),
])
def test_tls_spellings(env: dict[str, str], tls: bool) -> None:
    assert Config.from_env(env).tls is tls


@pytest.mark.parametrize("env", [{"COLONIES_SERVER_PORT": "x"}, {"COLONIES_SERVER_PORT": "70000"},
                                 {"AWS_S3_ENDPOINT": "http://localhost"}])
def test_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="COLONIES_SERVER_PORT|AWS_S3_ENDPOINT"):
        Config.from_env(env)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLONIES_SERVER_PORT", "1234")
    monkeypatch.setenv("COLONIES_COLONY_NAME", "fromenv")
    cfg = Config.from_env()
    assert cfg.port == 1234 and cfg.colonyname == "fromenv"


def test_round_trip_through_env_and_env_file(tmp_path: Path) -> None:
    cfg = Config.from_env(DEV)
    assert Config.from_env(cfg.to_env()) == cfg
    from sdk.envfile import format_envfile

    path = tmp_path / "env"
    path.write_text(format_envfile(cfg.to_env()))
    assert Config.from_envfile(path) == cfg
    assert Config.from_envfile(path, {"COLONIES_SERVER_HOST": "ignored"}).host == "colonies.example"
    assert cfg.with_(port=1).port == 1


def test_secrets_are_not_in_repr() -> None:
    text = repr(Config.from_env(DEV))
    assert DEV["COLONIES_PRVKEY"] not in text and "sk" not in text.split("secretkey")[0][-3:]
    assert "secretkey=" not in text and "prvkey=" not in text


def test_client_from_env() -> None:
    with Colonies.from_env(DEV) as c:
        assert c.api_url == "https://colonies.example:50081/api"
        assert c.ws_url == "wss://colonies.example:50081/pubsub"
        assert c.colonyname == "dev" and c.prvkey == DEV["COLONIES_PRVKEY"]
        assert isinstance(c.store, S3Store) and c.store.config.bucket == "colonies-prod"
    with Colonies.from_env({}) as c:
        assert c.store is None and c.url == "http://localhost:50080"


def test_local_store_from_env_when_no_s3(tmp_path: Path) -> None:
    from sdk.stores import LocalStore, store_from_config

    cfg = Config.from_env({"COLONYFAAS_LOCAL_STORE": str(tmp_path / "files")})
    store = store_from_config(cfg)
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "files").resolve()
    assert Config.from_env(cfg.to_env()).local_store == str(tmp_path / "files")
    # S3 settings win: a stack with an S3 server never writes to the local directory.
    both = Config.from_env({"COLONYFAAS_LOCAL_STORE": str(tmp_path), "AWS_S3_ENDPOINT": "127.0.0.1:9000",
                            "AWS_S3_BUCKET": "faas"})
    assert isinstance(store_from_config(both), S3Store)
    assert store_from_config(Config.from_env({})) is None
