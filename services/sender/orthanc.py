"""Orthanc over its REST API: POST /instances, then ask which instances it holds."""

from __future__ import annotations

import ssl
from concurrent.futures import ThreadPoolExecutor

import httpx

from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_shared.tlsconfig import http_failure


class OrthancDestination:
    name = "orthanc"
    sends_whole_series = False

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, concurrency: int = 4,
                 verify: ssl.SSLContext | bool = True) -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.Client(base_url=url.rstrip("/"), auth=auth, timeout=timeout,
                                    limits=httpx.Limits(max_connections=concurrency),
                                    verify=verify)
        self._concurrency = concurrency

    def send(self, series: OutgoingSeries) -> None:
        with ThreadPoolExecutor(self._concurrency) as pool:
            for _ in pool.map(self._store, series.instances):
                pass

    def _store(self, instance: OutgoingInstance) -> None:
        try:
            response = self._client.post("/instances", content=instance.path.read_bytes(),
                                         headers={"Content-Type": "application/dicom"})
        except httpx.HTTPError as exc:
            raise DestinationError(http_failure("orthanc", exc)) from exc
        if response.status_code != 200:
            raise DestinationError(
                f"orthanc refused image {instance.image_id}: HTTP {response.status_code}")

    def missing(self, series: OutgoingSeries) -> set[str]:
        query = {"Level": "Instance", "Expand": True,
                 "Query": {"SeriesInstanceUID": series.series_instance_uid}}
        try:
            response = self._client.post("/tools/find", json=query)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.HTTPStatusError):
                raise DestinationError(f"orthanc query failed: {type(exc).__name__}") from exc
            raise DestinationError(http_failure("orthanc", exc)) from exc
        held = {item["MainDicomTags"].get("SOPInstanceUID") for item in response.json()}
        return {i.sop_instance_uid for i in series.instances} - held

    def close(self) -> None:
        self._client.close()
