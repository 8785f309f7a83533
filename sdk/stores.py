"""Byte stores behind CFS: S3 (boto3, pycolonies' layout) and a local directory for one machine."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from ._boundary import translate_errors
from .cfs import new_object_key
from .config import Config, S3Config
from .errors import NotFoundError, StoreError
from .models import Reference, S3Object

__all__ = [
    "LOCAL_PROTOCOL",
    "LocalStore",
    "S3Store",
    "S3_PROTOCOL",
    "Store",
    "store_from_config",
]

S3_PROTOCOL = "s3"
LOCAL_PROTOCOL = "local"


class Store(Protocol):
    """Where file bytes go. `put*` returns the `ref` recorded in CFS; `get`/`delete` take it back."""

    protocol: str

    def put(self, data: bytes) -> Reference: ...

    def put_path(self, path: str | os.PathLike[str]) -> Reference: ...

    def get(self, ref: Reference) -> bytes: ...

    def get_to_path(self, ref: Reference, path: str | os.PathLike[str]) -> None: ...

    def delete(self, ref: Reference) -> None: ...


def _check_protocol(store: Store, ref: Reference) -> None:
    if ref.protocol != store.protocol:
        raise StoreError(f"this file lives in a {ref.protocol!r} store, the client has a {store.protocol!r} store")


class LocalStore:
    """Files in one directory, for single-machine use.

    Ref layout: `{"protocol": "local", "s3object": {"object": <64-hex key>, "bucket": <directory>}}`,
    other s3object fields empty. The bytes are `<root>/<object>`; the recorded `bucket` (the
    directory at upload time) is informational — reads use this store's own root, just as S3 reads
    use the reader's own credentials.
    """

    protocol = LOCAL_PROTOCOL

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, ref: Reference) -> Path:
        _check_protocol(self, ref)
        key = ref.s3object.object
        if not key or "/" in key or "\\" in key or key in (".", ".."):
            raise StoreError(f"invalid local object key {key!r}")
        return self.root / key

    def _ref(self, key: str) -> Reference:
        return Reference(protocol=LOCAL_PROTOCOL, s3object=S3Object(object=key, bucket=str(self.root)))

    def _write(self, key: str, chunks: Any) -> None:
        # Write then rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, self.root / key)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, data: bytes) -> Reference:
        key = new_object_key()
        self._write(key, [data])
        return self._ref(key)

    def put_path(self, path: str | os.PathLike[str]) -> Reference:
        key = new_object_key()
        with open(path, "rb") as f:
            self._write(key, iter(lambda: f.read(1 << 20), b""))
        return self._ref(key)

    def get(self, ref: Reference) -> bytes:
        path = self._path(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"local store has no object {ref.s3object.object}", 404) from None

    def get_to_path(self, ref: Reference, path: str | os.PathLike[str]) -> None:
        Path(path).write_bytes(self.get(ref))

    def delete(self, ref: Reference) -> None:
        self._path(ref).unlink(missing_ok=True)


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ImportError("S3 file storage needs boto3: pip install 'colonyfaas[s3]'") from None
    return boto3


class S3Store:
    """S3 via boto3, with pycolonies' layout: object key = 64 hex chars in the bucket root, ref =
    `{"protocol": "s3", "s3object": {server, port, tls, bucket, object, region, accesskey:"", ...}}`.

    Reads follow the ref's server/port/tls/bucket/region with this store's credentials, so files
    uploaded by pycolonies (or another S3 endpoint name for the same server) download here.
    """

    protocol = S3_PROTOCOL

    def __init__(self, config: S3Config) -> None:
        if not config.bucket:
            raise ValueError("S3 storage needs a bucket (AWS_S3_BUCKET)")
        self.config = config
        self._boto3 = _boto3()
        self._clients: dict[tuple[str, int, bool, str], Any] = {}
        self._lock = threading.Lock()
        self._bucket_checked = False

    def _client(self, server: str, port: int, tls: bool, region: str) -> Any:
        key = (server, port, tls, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # boto3 clients are thread-safe; creating one costs tens of ms, so keep them.
                client = self._boto3.client(
                    "s3", endpoint_url=f"http{'s' if tls else ''}://{server}:{port}",
                    aws_access_key_id=self.config.accesskey, aws_secret_access_key=self.config.secretkey,
                    region_name=region or None, use_ssl=tls, verify=not self.config.skipverify)
                self._clients[key] = client
            return client

    def _own(self) -> Any:
        c = self.config
        return self._client(c.host, c.port, c.tls, c.region)

    def _for(self, ref: Reference) -> tuple[Any, str, str]:
        _check_protocol(self, ref)
        o = ref.s3object
        if not o.object or not o.bucket:
            raise StoreError("S3 ref without bucket or object")
        if not o.server:
            return self._own(), o.bucket, o.object
        return self._client(o.server, o.port, o.tls, o.region), o.bucket, o.object

    def _ensure_bucket(self, client: Any) -> None:
        if self._bucket_checked:
            return
        with translate_errors():
            try:
                client.head_bucket(Bucket=self.config.bucket)
            except Exception as e:
                if getattr(e, "response", {}).get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                client.create_bucket(Bucket=self.config.bucket)
        self._bucket_checked = True

    def _ref(self, key: str) -> Reference:
        c = self.config
        return Reference(protocol=S3_PROTOCOL, s3object=S3Object(
            server=c.host, port=c.port, tls=c.tls, region=c.region, object=key, bucket=c.bucket))

    def put(self, data: bytes) -> Reference:
        client = self._own()
        self._ensure_bucket(client)
        key = new_object_key()
        with translate_errors():
            client.put_object(Bucket=self.config.bucket, Key=key, Body=data)
        return self._ref(key)

    def put_path(self, path: str | os.PathLike[str]) -> Reference:
        client = self._own()
        self._ensure_bucket(client)
        key = new_object_key()
        with translate_errors():
            client.upload_file(os.fspath(path), self.config.bucket, key)
        return self._ref(key)

    def get(self, ref: Reference) -> bytes:
        client, bucket, key = self._for(ref)
        with translate_errors():
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def get_to_path(self, ref: Reference, path: str | os.PathLike[str]) -> None:
        client, bucket, key = self._for(ref)
        with translate_errors():
            client.download_file(bucket, key, os.fspath(path))

    def delete(self, ref: Reference) -> None:
        client, bucket, key = self._for(ref)
        with translate_errors():
            client.delete_object(Bucket=bucket, Key=key)


def store_from_config(config: Config) -> Store | None:
    """The store the config describes: S3 (AWS_S3_*), else a local directory
    (COLONYFAAS_LOCAL_STORE, what `faas dev` uses without an S3 server), else None."""
    if config.s3 is not None:
        return S3Store(config.s3)
    if config.local_store:
        return LocalStore(config.local_store)
    return None
