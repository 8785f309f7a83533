"""The gateway's configuration: one frozen object, built once at the entrypoint from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ConfigError", "S3Settings", "Settings", "parse_api_keys"]


class ConfigError(ValueError):
    """An environment variable or option with a value the gateway cannot use."""


@dataclass(frozen=True)
class S3Settings:
    """Where the function bundles' bytes are (the AWS_S3_* variables of the Colonies ecosystem)."""

    endpoint: str = ""
    accesskey: str = ""
    secretkey: str = ""
    bucket: str = ""
    tls: bool = False
    skipverify: bool = False
    region: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.endpoint and self.bucket)


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs; nothing below the entrypoint reads os.environ."""

    colony: str
    prvkey: str = field(repr=False)
    server_host: str = "localhost"
    server_port: int = 50080
    server_tls: bool = False
    # COLONIES_SERVER_SOCKET: reach the server through this Unix socket instead of TCP (a server on
    # this host started with --unix-socket); no TLS on it.
    server_socket: str = ""
    s3: S3Settings = field(default_factory=S3Settings)
    # Without S3: the directory of the local-directory store (COLONYFAAS_LOCAL_STORE, `faas dev`
    # without an S3 server). Function bundles are read from there.
    local_store: str = ""
    # Empty = no authentication (the default for a gateway on 127.0.0.1).
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    executortype: str = "faas-executor"
    label: str = "/faas"
    # Largest request body accepted (bytes); bigger ones get 413 without being buffered.
    max_body: int = 11 * 1024 * 1024  # signed and base64-encoded (~4/3), the submit must fit the server's 16 MiB
    # Seconds a synchronous call waits for its result before answering 504 (X-Timeout overrides).
    timeout: float = 30.0
    max_timeout: float = 900.0
    # maxexectime for bundles without limits.timeout, and for bare source files.
    default_exec_timeout: int = 60
    # How long function metadata is trusted before it is re-checked against the /faas revision.
    cache_ttl: float = 2.0
    # Timeout of one RPC to the Colonies server.
    rpc_timeout: float = 10.0
    # How long an idle client connection is kept open. Longer than the clients' and load balancers'
    # own idle timeouts (httpx 5 s, AWS ALB 60 s), so that they close first: at uvicorn's 5 s, equal
    # to httpx's, a client reusing a connection just as the gateway closed it got a ReadError.
    keepalive: float = 75.0
    # How long GET /healthz waits for the server's answer before it is a 503: a probe must learn of
    # a server that accepts connections but never answers long before rpc_timeout.
    health_timeout: float = 2.0
    # How long a submission is resent (with its idempotency key) while the server cannot be
    # reached or its answer is lost, before the call answers 503. 0: not resent.
    submit_retry: float = 5.0
    # Kept-alive HTTP connections to the server. Few on purpose: httpcore checks every pooled
    # connection on each request, and one connection carries ~1,000 RPCs/s.
    rpc_connections: int = 8
    # How long an async invocation's callback waits for the result, then how it is delivered.
    callback_wait: float = 3600.0
    callback_attempts: int = 6
    callback_backoff: float = 0.5
    callback_timeout: float = 10.0
    idempotency_ttl: float = 24 * 3600.0
    idempotency_max_keys: int = 100_000
    # Executor types whose waiting-process count /metrics reports (for autoscalers such as KEDA).
    metrics_executortypes: tuple[str, ...] = ("faas-executor",)
    metrics_cache_seconds: float = 1.0

    @property
    def server_url(self) -> str:
        """The server as logs name it (its URL, or unix:PATH)."""
        if self.server_socket:
            return f"unix:{self.server_socket}"
        return f"{'https' if self.server_tls else 'http'}://{self.server_host}:{self.server_port}"

    @property
    def pubsub_url(self) -> str:
        secure = self.server_tls and not self.server_socket
        return f"{'wss' if secure else 'ws'}://{self.server_host}:{self.server_port}/pubsub"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: object) -> Settings:
        """Settings from COLONIES_*, AWS_S3_* and FAAS_GATEWAY_* variables (the caller passes os.environ)."""
        prvkey = env.get("COLONIES_PRVKEY", "")
        if not prvkey:
            raise ConfigError("COLONIES_PRVKEY is not set (a user key of the colony the gateway submits to)")
        colony = env.get("COLONIES_COLONY_NAME", "")
        if not colony:
            raise ConfigError("COLONIES_COLONY_NAME is not set")
        keys = parse_api_keys(env.get("FAAS_GATEWAY_API_KEYS", ""))
        keyfile = env.get("FAAS_GATEWAY_API_KEYS_FILE", "")
        if keyfile:
            try:
                text = Path(keyfile).read_text()
            except OSError as e:
                raise ConfigError(f"FAAS_GATEWAY_API_KEYS_FILE: cannot read {keyfile}: {e}") from e
            keys |= parse_api_keys(text)
        s3 = S3Settings(
            endpoint=env.get("AWS_S3_ENDPOINT", ""),
            accesskey=env.get("AWS_S3_ACCESSKEY", ""),
            secretkey=env.get("AWS_S3_SECRETKEY", ""),
            bucket=env.get("AWS_S3_BUCKET", ""),
            tls=_bool(env, "AWS_S3_TLS", False),
            skipverify=_bool(env, "AWS_S3_SKIPVERIFY", False),
            region=env.get("AWS_S3_REGION", ""),
        )
        values: dict[str, object] = dict(
            colony=colony,
            prvkey=prvkey,
            server_host=env.get("COLONIES_SERVER_HOST", "localhost"),
            server_port=_int(env, "COLONIES_SERVER_PORT", 50080),
            server_tls=_bool(env, "COLONIES_SERVER_TLS", False),
            server_socket=env.get("COLONIES_SERVER_SOCKET", "").strip(),
            s3=s3,
            local_store=env.get("COLONYFAAS_LOCAL_STORE", "").strip(),
            api_keys=frozenset(keys),
            executortype=env.get("FAAS_GATEWAY_EXECUTOR_TYPE", "faas-executor"),
            timeout=_float(env, "FAAS_GATEWAY_TIMEOUT", 30.0),
            max_body=_int(env, "FAAS_GATEWAY_MAX_BODY", 11 * 1024 * 1024),
            max_timeout=_float(env, "FAAS_GATEWAY_MAX_TIMEOUT", 900.0),
            default_exec_timeout=_int(env, "FAAS_GATEWAY_EXEC_TIMEOUT", 60),
            cache_ttl=_float(env, "FAAS_GATEWAY_CACHE_TTL", 2.0),
            rpc_timeout=_float(env, "FAAS_GATEWAY_RPC_TIMEOUT", 10.0),
            keepalive=_float(env, "FAAS_GATEWAY_KEEPALIVE", 75.0),
            health_timeout=_float(env, "FAAS_GATEWAY_HEALTH_TIMEOUT", 2.0),
            rpc_connections=_int(env, "FAAS_GATEWAY_RPC_CONNECTIONS", 8),
            submit_retry=_float(env, "FAAS_GATEWAY_SUBMIT_RETRY", 5.0),
            callback_wait=_float(env, "FAAS_GATEWAY_CALLBACK_WAIT", 3600.0),
            callback_attempts=_int(env, "FAAS_GATEWAY_CALLBACK_ATTEMPTS", 6),
        )
        types = env.get("FAAS_GATEWAY_METRICS_EXECUTOR_TYPES", "")
        values["metrics_executortypes"] = (
            tuple(t.strip() for t in types.split(",") if t.strip()) or (str(values["executortype"]),)
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for name in ("timeout", "max_timeout", "rpc_timeout", "health_timeout", "keepalive", "callback_wait",
                     "callback_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if self.timeout > self.max_timeout:
            raise ConfigError("timeout must not exceed max_timeout")
        if not self.submit_retry >= 0:
            raise ConfigError("submit_retry must be 0 or more seconds")
        if self.max_body < 0:
            raise ConfigError("max_body must be 0 or more bytes")
        if self.callback_attempts < 1:
            raise ConfigError("callback_attempts must be at least 1")


def parse_api_keys(text: str) -> set[str]:
    """API keys from a comma- or newline-separated text; blank entries and `#` comment lines are skipped."""
    keys: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keys.update(k.strip() for k in line.split(",") if k.strip())
    return keys


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
