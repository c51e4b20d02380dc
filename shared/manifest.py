"""The manifest of a delivered series: what was sent, how it was made, who holds it.

One JSON object per series, signed by the relay (`relay_shared.signing`):
the project, the de-identification (profile, options, the SHA-256 of the PS3.15
Table E.1-1 data and of the recipe, the pseudonym key's id, never the key), the
relay's version, each sent instance's SOPInstanceUID with the size and SHA-256 of
the bytes sent, and each destination's confirmation with its time. Only
de-identified values: it travels with the data.

`check_manifest` is the other side: the signature, then each file against the
instance it claims to be. What it proves and what it does not: docs/review.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .signing import signature_problems

FORMAT = "dicom-relay-manifest/1"
MANIFEST_NAME = "series.manifest.json"
READ_CHUNK = 1 << 20
# What the de-identification record (the series' audit) gives the manifest.
DEID_FIELDS = ("profile", "engine_version", "options", "method_codes", "table_sha256",
               "recipe", "key_id")


@dataclass(frozen=True)
class InstanceSent:
    sop_instance_uid: str
    size: int
    sha256: str

    def as_json(self) -> dict[str, Any]:
        return {"sop_instance_uid": self.sop_instance_uid, "file": f"{self.sop_instance_uid}.dcm",
                "bytes": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class ObjectSent:
    """What a destination holds in place of the instances' own files: a NIfTI volume
    made of `instances` of them (every instance the manifest lists)."""

    file: str
    size: int
    sha256: str
    instances: int

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "bytes": self.size, "sha256": self.sha256,
                "made_of_instances": self.instances}


@dataclass(frozen=True)
class Confirmation:
    name: str
    kind: str
    proof: str  # how the destination showed it holds each instance
    instances_confirmed: int
    confirmed_at: str  # ISO 8601, UTC: the last of its instances' confirmations
    # Instances this destination was sent in another transfer syntax than the series'
    # files (its transfer_syntax list): the bytes it holds are these, not those.
    transcoded: tuple[InstanceSent, ...] = ()
    # What it holds instead of the DICOM files (a volume); empty when it holds those.
    objects: tuple[ObjectSent, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "proof": self.proof,
                               "instances_confirmed": self.instances_confirmed,
                               "confirmed_at": self.confirmed_at}
        if self.transcoded:  # absent otherwise, so a manifest without reads as before
            out["instances_as_sent"] = [i.as_json() for i in sorted(
                self.transcoded, key=lambda i: i.sop_instance_uid)]
        if self.objects:
            out["objects_as_sent"] = [o.as_json() for o in self.objects]
        return out


@dataclass(frozen=True)
class SeriesFacts:
    relay_series_id: int
    study_instance_uid: str
    series_instance_uid: str
    project: str
    projects_sha256: str | None
    audit: dict[str, Any]  # the series' de-identification record


def relay_version() -> str:
    try:
        return metadata.version("dicom-relay")
    except metadata.PackageNotFoundError:  # run from a source tree never installed
        return "unknown"


def sha256_of(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fp:
        while chunk := fp.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def build_manifest(facts: SeriesFacts, relay_version: str, instances: Iterable[InstanceSent],
                   confirmations: Sequence[Confirmation]) -> dict[str, Any]:
    """The manifest's body, before it is signed. Made only of what the database and the
    files hold, never of the time it is made: built again, it is the same manifest."""
    deid = {key: facts.audit.get(key) for key in DEID_FIELDS}
    deid["table_e1_1_sha256"] = deid.pop("table_sha256")
    deid["pseudonym_key_id"] = deid.pop("key_id")
    return {
        "format": FORMAT,
        "relay_version": relay_version,
        "project": {"name": facts.project, "projects_file_sha256": facts.projects_sha256},
        "series": {"relay_series_id": facts.relay_series_id,
                   "study_instance_uid": facts.study_instance_uid,
                   "series_instance_uid": facts.series_instance_uid},
        "deidentification": deid,
        "instances": [i.as_json() for i in sorted(instances, key=lambda i: i.sop_instance_uid)],
        "destinations": [c.as_json() for c in confirmations],
    }


def manifest_bytes(document: dict[str, Any]) -> bytes:
    """As stored and sent: indented for people; the signature covers the canonical form,
    so the layout of these bytes does not matter to it."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


@dataclass
class Report:
    """The outcome of `check_manifest`: every failure named; `ok` only without any."""

    key_id: str | None = None
    failures: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class ManifestUnreadable(ValueError):
    """Not a manifest at all: not JSON, or not an object of this format."""


def parse_manifest(content: bytes) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestUnreadable(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ManifestUnreadable(f"not a manifest of format {FORMAT}")
    if not isinstance(document.get("instances"), list):
        raise ManifestUnreadable("a manifest without its list of instances")
    return document


def objects_as_sent(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects (volumes) destinations hold in place of the instances' files."""
    return [o for d in document.get("destinations") or [] if isinstance(d, dict)
            for o in d.get("objects_as_sent") or [] if isinstance(o, dict)]


def check_manifest(document: dict[str, Any], files: Sequence[Path],
                   trusted: Ed25519PublicKey | None = None, *,
                   every_instance: bool = False) -> Report:
    """The signature, then each file: it must be byte for byte an instance the manifest
    lists. `every_instance`: each listed instance must be among the files too."""
    problems, key_id = signature_problems(document, trusted)
    report = Report(key_id=key_id, failures=list(problems))
    instances = [i for i in document["instances"] if isinstance(i, dict)]
    # A destination sent in another transfer syntax holds other bytes of the same
    # instance: either form is that instance.
    as_sent = [i for d in document.get("destinations") or [] if isinstance(d, dict)
               for i in d.get("instances_as_sent") or [] if isinstance(i, dict)]
    listed = {str(i.get("sha256")): i for i in [*instances, *as_sent]}
    by_file = {str(i.get("file")): i for i in instances}
    # A volume made of every instance listed stands for all of them.
    volumes = {str(o.get("sha256")): o for o in objects_as_sent(document)}
    volume_files = {str(v.get("file")) for v in volumes.values()}
    seen: set[str] = set()
    for path in files:
        try:
            size, digest = sha256_of(path)
        except OSError as exc:
            report.failures.append(f"{path}: cannot be read ({type(exc).__name__})")
            continue
        entry = listed.get(digest)
        volume = volumes.get(digest)
        if volume is not None and volume.get("bytes") == size \
                and volume.get("made_of_instances") == len(instances):
            seen.update(str(i.get("sop_instance_uid")) for i in instances)
            report.checked.append(f"{path}: the volume made of all {len(instances)} instances")
        elif entry is not None and entry.get("bytes") == size:
            seen.add(str(entry.get("sop_instance_uid")))
            report.checked.append(f"{path}: {entry.get('sop_instance_uid')}")
        elif path.name in by_file:
            report.failures.append(f"{path}: its SHA-256 is not the one the manifest gives "
                                   f"for instance {by_file[path.name].get('sop_instance_uid')}")
        elif path.name in volume_files:
            report.failures.append(f"{path}: its SHA-256 is not the one the manifest gives "
                                   "for the volume")
        else:
            report.failures.append(f"{path}: not an instance the manifest lists")
    missing = [uid for i in instances if (uid := str(i.get("sop_instance_uid"))) not in seen]
    if every_instance:
        report.failures += [f"instance {uid}: listed in the manifest, not found" for uid in missing]
    else:
        report.not_checked = missing
    return report
