"""A real S3-compatible server for tests: moto's standalone server as a process.

moto implements the S3 REST API (put/copy/head/list/multipart, ETags, user metadata) over
HTTP; the store talks to it through s3fs/botocore exactly as to AWS or MinIO.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import free_port

_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    def __init__(self, log_dir: Path, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port()
        self.log_path = log_dir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0, prefix: list[str] | None = None) -> None:
        """Start the server (``prefix``: e.g. ``ip netns exec NS`` to run it elsewhere)."""
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        assert exe, "moto_server not installed (dev dependency moto[server])"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*(prefix or []), exe, "-H", self.host, "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")
            try:
                httpx.get(self.endpoint, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"moto_server not answering on {self.endpoint}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())

    def new_bucket(self) -> str:
        name = f"ktrdr-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "artifacts") -> dict[str, str]:
        """What a process needs to use the store: the usual AWS variables and the URL."""
        return {
            **_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "KTRDR_ARTIFACTS_URL": f"s3://{bucket}/{prefix}",
        }


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": _CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": _CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": _CREDENTIALS["AWS_REGION"],
    }


STORES = ("local", "s3")


def store_options(request: Any, store: str) -> dict[str, Any]:
    """StackFactory.start options for a store: ``local`` = one data home shared by the API and
    its workers (one host); ``s3`` = a fresh bucket on the session's S3 server and a data home
    per worker, as for workers on separate hosts."""
    if store == "local":
        return {"env": {}, "separate_homes": False}
    server: S3Server = request.getfixturevalue("s3_server")
    return {"env": server.env(server.new_bucket()), "separate_homes": True}
