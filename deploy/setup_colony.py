"""One-shot setup for Compose and Kubernetes: create the colony and its user if they are missing.

Run by the Compose `setup` service and the Kubernetes `faas-setup` Job, inside the colonyfaas
image (`python /opt/colonyfaas/setup_colony.py`). It is idempotent, so it can run on every
`docker compose up` / `kubectl apply`: a colony or user that already exists is success. Executors
need nothing here: each one registers (and unregisters) itself with the colony key.

Environment (the Colonies names, ARCHITECTURE.md):
  COLONIES_SERVER_HOST, COLONIES_SERVER_PORT, COLONIES_SERVER_TLS   where the server is
  COLONIES_SERVER_PRVKEY    server owner: the only key allowed to add a colony
  COLONIES_COLONY_NAME, COLONIES_COLONY_PRVKEY   the colony and its owner key (= colony id)
  COLONIES_PRVKEY           the user the gateway and `faas deploy` sign with
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("colonyfaas.setup")


@dataclass(frozen=True)
class SetupSettings:
    host: str
    port: int
    tls: bool
    server_prvkey: str
    colony_name: str
    colony_prvkey: str
    user_prvkey: str
    user_name: str
    timeout: float


def settings_from_env(env: Mapping[str, str], user_name: str, timeout: float) -> SetupSettings:
    """Read the settings once; a missing variable is named in the error."""
    required = ["COLONIES_SERVER_HOST", "COLONIES_SERVER_PORT", "COLONIES_SERVER_PRVKEY",
                "COLONIES_COLONY_NAME", "COLONIES_COLONY_PRVKEY", "COLONIES_PRVKEY"]
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise SystemExit(f"setup: missing environment variables: {', '.join(missing)}")
    return SetupSettings(
        host=env["COLONIES_SERVER_HOST"],
        port=int(env["COLONIES_SERVER_PORT"]),
        tls=env.get("COLONIES_SERVER_TLS", "false").lower() == "true",
        server_prvkey=env["COLONIES_SERVER_PRVKEY"],
        colony_name=env["COLONIES_COLONY_NAME"],
        colony_prvkey=env["COLONIES_COLONY_PRVKEY"],
        user_prvkey=env["COLONIES_PRVKEY"],
        user_name=user_name,
        timeout=timeout,
    )


def run(settings: SetupSettings) -> None:
    """Create the colony and the user; wait for the server up to `settings.timeout` seconds."""
    from sdk import Colonies, ColoniesConnectionError, Colony, ConflictError, User, id_from_prvkey

    client = Colonies(host=settings.host, port=settings.port, tls=settings.tls,
                      prvkey=settings.server_prvkey)
    try:
        deadline = time.monotonic() + settings.timeout
        while True:
            try:
                client.version()
                break
            except ColoniesConnectionError as e:
                if time.monotonic() > deadline:
                    raise SystemExit(f"setup: server {settings.host}:{settings.port} not reachable: {e}") from e
                log.info("waiting for the server at %s:%s", settings.host, settings.port)
                time.sleep(1.0)

        colony_id = id_from_prvkey(settings.colony_prvkey)
        try:
            client.add_colony(Colony(colonyid=colony_id, name=settings.colony_name))
            log.info("created colony %s (%s)", settings.colony_name, colony_id)
        except ConflictError:
            log.info("colony %s already exists", settings.colony_name)

        user_id = id_from_prvkey(settings.user_prvkey)
        user = User(colonyname=settings.colony_name, userid=user_id, name=settings.user_name)
        try:
            client.add_user(user, prvkey=settings.colony_prvkey)
            log.info("created user %s (%s) in colony %s", settings.user_name, user_id, settings.colony_name)
        except ConflictError:
            log.info("user %s already exists in colony %s", settings.user_name, settings.colony_name)
    finally:
        client.close_connections()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user-name", default="faas", help="name of the user COLONIES_PRVKEY signs as")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run(settings_from_env(os.environ, args.user_name, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
