"""Settings from an environment mapping (pure: the tests never touch os.environ)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import ConfigError, Settings

ENV = {"COLONIES_PRVKEY": "ab" * 32, "COLONIES_COLONY_NAME": "dev", "COLONIES_SERVER_HOST": "srv",
       "COLONIES_SERVER_PORT": "1234", "COLONIES_SERVER_TLS": "true"}


def test_from_env_reads_colonies_and_gateway_variables(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text("# keys\nfromfile\n")
    s = Settings.from_env({**ENV, "FAAS_GATEWAY_API_KEYS": "k1,k2", "FAAS_GATEWAY_API_KEYS_FILE": str(keyfile),
                           "FAAS_GATEWAY_TIMEOUT": "5", "AWS_S3_ENDPOINT": "h:9000", "AWS_S3_BUCKET": "b"})
    assert (s.colony, s.server_host, s.server_port, s.server_tls) == ("dev", "srv", 1234, True)
    assert s.api_keys == {"k1", "k2", "fromfile"}
    assert s.timeout == 5.0 and s.s3.configured
    assert s.health_timeout == 2.0  # the default
    assert Settings.from_env({**ENV, "FAAS_GATEWAY_HEALTH_TIMEOUT": "0.5"}).health_timeout == 0.5
    assert s.keepalive == 75.0 and Settings.from_env({**ENV, "FAAS_GATEWAY_KEEPALIVE": "30"}).keepalive == 30.0
    assert s.pubsub_url == "wss://srv:1234/pubsub"
    assert "ab" * 32 not in repr(s)


def test_a_unix_socket_replaces_tcp_and_tls() -> None:
    s = Settings.from_env({**ENV, "COLONIES_SERVER_SOCKET": " /run/colonies.sock "})
    assert s.server_socket == "/run/colonies.sock"
    assert (s.server_url, s.pubsub_url) == ("unix:/run/colonies.sock", "ws://srv:1234/pubsub")
    assert Settings.from_env(ENV).server_socket == ""


def test_the_local_directory_store_is_used_without_s3(tmp_path: Path) -> None:
    from gateway.client import make_client
    from sdk.stores import LocalStore

    s = Settings.from_env({**ENV, "COLONYFAAS_LOCAL_STORE": str(tmp_path)})
    assert not s.s3.configured and s.local_store == str(tmp_path)
    client = make_client(s)
    assert isinstance(client.store, LocalStore)


@pytest.mark.parametrize(("env", "message"), [
    ({"COLONIES_COLONY_NAME": "dev"}, "COLONIES_PRVKEY is not set"),
    ({**ENV, "COLONIES_SERVER_PORT": "x"}, "COLONIES_SERVER_PORT='x' is not an integer"),
    ({**ENV, "COLONIES_SERVER_TLS": "maybe"}, "not a boolean"),
    ({**ENV, "FAAS_GATEWAY_TIMEOUT": "0"}, "timeout must be a positive"),
    ({**ENV, "FAAS_GATEWAY_HEALTH_TIMEOUT": "0"}, "health_timeout must be a positive"),
    ({**ENV, "FAAS_GATEWAY_HEALTH_TIMEOUT": "soon"}, "FAAS_GATEWAY_HEALTH_TIMEOUT='soon' is not a number"),
    ({**ENV, "FAAS_GATEWAY_KEEPALIVE": "0"}, "keepalive must be a positive"),
    ({**ENV, "FAAS_GATEWAY_API_KEYS_FILE": "/nonexistent/keys"}, "cannot read"),
])
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
