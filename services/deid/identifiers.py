"""Replacement identifiers from an external REST service (RELAY_IDENTIFIERS_URL).

One POST per patient, cached for the life of the worker. While the service is
down the series is not failed and not sent: IdentifiersUnavailable makes the
message wait and come back, like any other transient fault.

Request (JSON): {"patient_id": str, "patient_name": str, "key_id": str}
  (the patient's normalised id and name as the hospital wrote them)
Response (JSON, 200): {"patient_id": str, "patient_name": str,
  "date_shift_days": int, "accession_number": str | null, "extra": {keyword: value}}
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Protocol

import httpx
from pydantic import BaseModel, Field, ValidationError

from relay_shared.deid import Identifiers, Pseudonymizer
from relay_shared.deid.identifiers import normalise_id, normalise_name
from relay_shared.reasons import RelayError

CACHE_SIZE = 10_000


class IdentifiersUnavailable(RelayError):
    """The identifiers service did not answer usefully; try the series again later."""


class IdentifiersResponse(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    patient_name: str = Field(min_length=1, max_length=64)
    date_shift_days: int = Field(ge=-36500, le=36500)
    accession_number: str | None = Field(default=None, max_length=16)
    extra: dict[str, str] = Field(default_factory=dict)


class IdentifiersSource(Protocol):
    source: str

    def identifiers_for(self, patient_id: str, patient_name: str
                        ) -> tuple[Identifiers, str | None]:
        """The replacement identity and the sha256 of the raw response (None if local)."""


class LocalIdentifiers:
    source = "local"

    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self._pseudonymizer = pseudonymizer

    def identifiers_for(self, patient_id: str, patient_name: str
                        ) -> tuple[Identifiers, str | None]:
        return self._pseudonymizer.identifiers_for(patient_id, patient_name), None


class RemoteIdentifiers:
    source = "service"

    def __init__(self, url: str, key_id: str, timeout: float = 10.0, attempts: int = 3,
                 token: str | None = None, verify: bool | str = True) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.HTTPTransport(retries=attempts - 1)  # connection errors only
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport,
                                    verify=verify)
        self._url, self._key_id, self._attempts = url, key_id, attempts
        self._cache: OrderedDict[str, tuple[Identifiers, str]] = OrderedDict()

    def identifiers_for(self, patient_id: str, patient_name: str
                        ) -> tuple[Identifiers, str | None]:
        key = normalise_id(patient_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = self._ask(key, normalise_name(patient_name))
        self._cache[key] = result
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _ask(self, patient_id: str, patient_name: str) -> tuple[Identifiers, str]:
        body = {"patient_id": patient_id, "patient_name": patient_name, "key_id": self._key_id}
        try:
            response = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise IdentifiersUnavailable(f"identifiers service unreachable: "
                                         f"{type(exc).__name__}") from None
        if response.status_code != 200:
            raise IdentifiersUnavailable(
                f"identifiers service answered HTTP {response.status_code}")
        try:
            parsed = IdentifiersResponse.model_validate_json(response.content)
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise IdentifiersUnavailable(
                f"identifiers service response is not valid ({fields or 'not JSON'})") from None
        digest = hashlib.sha256(json.dumps(parsed.model_dump(), sort_keys=True).encode())
        ids = Identifiers(parsed.patient_id, parsed.patient_name, parsed.date_shift_days,
                          self._key_id, parsed.accession_number, parsed.extra)
        return ids, digest.hexdigest()
