"""moto's S3 in server mode, as its own process on a free loopback port: the relay speaks
to it over HTTP with boto3 exactly as to AWS, MinIO or Ceph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

from tests.support.services import end, free_port, port_open, wait_until

ACCESS_KEY_ID = "relay-test-key"
SECRET_ACCESS_KEY = "relay-test-secret"  # moto accepts any key
REGION = "eu-west-1"


class MotoS3:
    def __init__(self, log: Path, bucket: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        script = Path(sys.executable).with_name("moto_server")
        self._log = open(log, "wb")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen([str(script), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 30, "moto_server")
        self.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": REGION})

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {self.process.returncode}")
        return port_open(self.port)

    def settings(self) -> dict[str, str]:
        """The RELAY_S3_* settings that reach this server."""
        return {"s3_bucket": self.bucket, "s3_endpoint": self.url, "s3_region": REGION,
                "s3_access_key_id": ACCESS_KEY_ID, "s3_secret_access_key": SECRET_ACCESS_KEY}

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID,
                            aws_secret_access_key=SECRET_ACCESS_KEY)

    def objects(self, prefix: str) -> dict[str, dict[str, Any]]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return {item["Key"]: item for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def stop(self) -> None:
        end(self.process)
        self._log.close()
