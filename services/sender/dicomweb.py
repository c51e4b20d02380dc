"""A DICOMweb archive: STOW-RS to store, QIDO-RS to prove receipt; HTTP Basic, a
bearer token or OAuth2 client credentials to be let in (webauth.py).

Instances go in multipart/related batches of bounded size, each part the file
as stored, up to ``concurrency`` requests at once (RELAY_SEND_CONCURRENCY): a series
is cut into at least that many batches when it has the instances, so an archive
that stores requests in parallel is kept busy. A STOW-RS answer lists failed
instances in its FailedSOPSequence even when the HTTP status says the request as a
whole went through.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from relay_sender.destinations import (
    DestinationError,
    OutgoingInstance,
    OutgoingSeries,
    checked_uid,
)
from relay_sender.webauth import BearerToken, ClientCredentials
from relay_shared.tlsconfig import http_failure

BATCH_BYTES = 32 * 1024 * 1024
BATCH_INSTANCES = 100
QIDO_PAGE = 1000
SOP_INSTANCE_UID = "00081155"
FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
DICOM_JSON = "application/dicom+json"


def batches(instances: list[OutgoingInstance], spread: int = 1
            ) -> Iterator[list[OutgoingInstance]]:
    """Batches of at most BATCH_BYTES and BATCH_INSTANCES, and at least ``spread`` of
    them when there are that many instances."""
    most = min(BATCH_INSTANCES, max(1, -(-len(instances) // max(1, spread))))
    batch: list[OutgoingInstance] = []
    size = 0
    for instance in instances:
        length = instance.path.stat().st_size
        if batch and (size + length > BATCH_BYTES or len(batch) >= most):
            yield batch
            batch, size = [], 0
        batch.append(instance)
        size += length
    if batch:
        yield batch


def multipart(instances: list[OutgoingInstance], boundary: str) -> bytes:
    parts = []
    for instance in instances:
        parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                  instance.path.read_bytes(), b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


class DicomWebDestination:
    name = "dicomweb"
    sends_whole_series = False

    def __init__(self, url: str, username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, verify: ssl.SSLContext | bool = True, *,
                 token: str | None = None, token_url: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 scope: str | None = None, concurrency: int = 1) -> None:
        auth: httpx.Auth | None = None
        if token_url:
            auth = ClientCredentials(token_url, client_id or "", client_secret or "", scope,
                                     timeout, verify)
        elif token:
            auth = BearerToken(token)
        elif username:
            auth = httpx.BasicAuth(username, password or "")
        self._auth = auth
        self._concurrency = max(1, concurrency)
        self._client = httpx.Client(base_url=url.rstrip("/"), auth=auth, timeout=timeout,
                                    verify=verify,
                                    limits=httpx.Limits(max_connections=self._concurrency))

    def send(self, series: OutgoingSeries) -> None:
        cut = list(batches(series.instances, self._concurrency))
        if len(cut) == 1:
            self._stow(series, cut[0])
            return
        # Every batch is tried even when one fails: the check that follows confirms what
        # arrived, and only the rest is sent again.
        with ThreadPoolExecutor(min(self._concurrency, len(cut)),
                                thread_name_prefix="stow") as pool:
            outcomes = [pool.submit(self._stow, series, batch) for batch in cut]
        for outcome in outcomes:
            outcome.result()

    def _stow(self, series: OutgoingSeries, batch: list[OutgoingInstance]) -> None:
        boundary = uuid.uuid4().hex
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        try:
            response = self._client.post(
                f"/studies/{checked_uid(series.study_instance_uid)}",
                content=multipart(batch, boundary),
                headers={"Content-Type": content_type, "Accept": DICOM_JSON})
        except httpx.HTTPError as exc:
            raise DestinationError(http_failure("dicomweb", exc)) from exc
        if response.status_code not in (200, 202):
            raise DestinationError(f"dicomweb refused {len(batch)} instance(s) of series "
                                   f"{series.series_id}: HTTP {response.status_code}")
        failed = _failed(response)
        if failed:
            raise DestinationError(f"dicomweb rejected {len(failed)} of {len(batch)} "
                                   f"instance(s) of series {series.series_id}: "
                                   f"reasons {sorted(set(failed.values()))}")

    def missing(self, series: OutgoingSeries) -> set[str]:
        return {i.sop_instance_uid for i in series.instances} - self.held(series)

    def held(self, series: OutgoingSeries) -> set[str]:
        path = (f"/studies/{checked_uid(series.study_instance_uid)}"
                f"/series/{checked_uid(series.series_instance_uid)}"
                "/instances")
        held: set[str] = set()
        offset = 0
        while True:
            page = self._qido(path, offset)
            held.update(_values(item, "00080018") for item in page)
            if len(page) < QIDO_PAGE:
                return held
            offset += len(page)

    def _qido(self, path: str, offset: int) -> list[dict]:
        try:
            response = self._client.get(path, params={"limit": QIDO_PAGE, "offset": offset},
                                        headers={"Accept": DICOM_JSON})
        except httpx.HTTPError as exc:
            raise DestinationError(http_failure("dicomweb", exc)) from exc
        if response.status_code in (204, 404):
            return []  # nothing of the series is there
        if response.status_code != 200:
            raise DestinationError(f"dicomweb query failed: HTTP {response.status_code}")
        return list(response.json() or [])

    def close(self) -> None:
        self._client.close()
        if isinstance(self._auth, ClientCredentials):
            self._auth.close()


def _values(item: dict, tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _failed(response: httpx.Response) -> dict[str, str]:
    """SOPInstanceUID -> failure reason, from a STOW-RS answer (empty when all stored)."""
    try:
        body = response.json() if response.content else {}
    except ValueError:
        return {}
    failed = (body.get(FAILED_SOP_SEQUENCE) or {}).get("Value") or []
    return {_values(item, SOP_INSTANCE_UID): f"0x{int(_values(item, FAILURE_REASON) or 0):04X}"
            for item in failed}
