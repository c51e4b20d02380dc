"""A sweep: series carrying planted identifying values through every failure path
(an element pydicom cannot decode, a UID of the wrong form, a truncated file, the
leak guard's quarantine, a destination that refuses), then a search for those
values everywhere a person or another service can read: the process's log (at
DEBUG), the AMQP dead-letter headers, /metrics, and every answer the API gives a
reader or an operator token.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest
from pydicom.uid import generate_uid

from relay_api.auth import hash_token
from tests.support.dicom_factory import Patient, SeriesSpec, deliver, make_instance
from tests.support.services import (
    AMQP_URL,
    RelayProcess,
    answers,
    delete_queues,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq]

PATIENT = Patient("RR4711", "Plantedname^Zelda", birth_date="19400229",
                  accession="ACC4711XQ", institution="Planted Memorial Clinic",
                  physician="Plantdoc^Quentin")
UID_ROOT = "1.2.826.0.1.3680043.10.4711"
TOKENS = {"reader": "sweep-reader-token", "operator": "sweep-operator-token"}


def planted_uid() -> str:
    return f"{UID_ROOT}.{uuid.uuid4().int % 10**20}"


def write_file(spec: SeriesSpec, index: int, path: Path, keep_comments: bool = True) -> Path:
    ds = make_instance(spec, index)
    if not keep_comments:
        del ds.ImageComments
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the planted bad UID is meant to be bad
        ds.save_as(path, enforce_file_format=True)
    return path


def sweep_folders(root: Path) -> tuple[list[Path], list[str]]:
    """Three deliveries: one the leak guard quarantines (its ImageComments, kept by the
    recipe, hold the patient id), one with bad files beside good ones that the
    destination refuses, one whose SeriesInstanceUID is not a UID."""
    leaky = SeriesSpec(PATIENT, instances=2, rows=8, columns=8, study_uid=planted_uid(),
                       series_uid=planted_uid(), sop_uids=[planted_uid(), planted_uid()])
    refused = SeriesSpec(PATIENT, instances=3, rows=8, columns=8, study_uid=planted_uid(),
                         series_uid=planted_uid(), sop_uids=[planted_uid() for _ in range(3)])
    bad_uid = SeriesSpec(PATIENT, instances=1, rows=8, columns=8, study_uid=planted_uid(),
                         series_uid=f"{PATIENT.patient_id}.{PATIENT.accession}",
                         sop_uids=[planted_uid()])
    wrong_vr = SeriesSpec(PATIENT, instances=2, rows=8, columns=8, study_uid=planted_uid(),
                          series_uid=planted_uid(), sop_uids=[planted_uid(), planted_uid()])
    folders = [root / name for name in ("leaky", "refused", "bad-uid", "wrong-vr")]
    for folder in folders:
        folder.mkdir(parents=True)
    for n in range(2):
        write_file(leaky, n, folders[0] / f"{n}.dcm")
    write_file(refused, 0, folders[1] / "0.dcm", keep_comments=False)
    _wrong_vr(write_file(refused, 1, folders[1] / "1.dcm", keep_comments=False))
    cut = write_file(refused, 2, folders[1] / "2.dcm", keep_comments=False)
    cut.write_bytes(cut.read_bytes()[:-40])
    (folders[1] / "3.dcm").write_bytes(b"DICM? no: " + PATIENT.patient_id.encode() * 40)
    write_file(bad_uid, 0, folders[2] / "0.dcm", keep_comments=False)
    for n in range(2):
        _wrong_vrs(write_file(wrong_vr, n, folders[3] / f"{n}.dcm", keep_comments=False))
    values = [PATIENT.patient_id, PATIENT.accession, "Plantedname", "Zelda", "Planted Memorial",
              "Plantdoc", "19400229", UID_ROOT]
    return folders, values


# Written by devices that do not conform: the UIDs as LO or SH, the dates as
# LO, a name as OB. The data dictionary, not the file, says what they are.
WRONG_VRS = {b"\x20\x00\x0d\x00UI": b"LO", b"\x20\x00\x0e\x00UI": b"SH",
             b"\x08\x00\x18\x00UI": b"LO", b"\x20\x00\x52\x00UI": b"SH",
             b"\x08\x00\x20\x00DA": b"LO", b"\x08\x00\x21\x00DA": b"LO"}


def _wrong_vrs(path: Path) -> None:
    data = path.read_bytes()
    for head, vr in WRONG_VRS.items():
        at = data.index(head, 132) + 4
        data = data[:at] + vr + data[at + 2:]
    at = data.index(b"\x08\x00\x90\x00PN", 132)  # ReferringPhysicianName as OB
    length = int.from_bytes(data[at + 6:at + 8], "little")
    data = data[:at + 4] + b"OB\x00\x00" + length.to_bytes(4, "little") + data[at + 8:]
    path.write_bytes(data)


def _wrong_vr(path: Path) -> None:
    """PatientID declared UL: pydicom's error about it quotes the bytes."""
    data = path.read_bytes()
    at = data.index(b"\x10\x00\x20\x00LO") + 4
    path.write_bytes(data[:at] + b"UL" + data[at + 2:])


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    prefix = f"sweep{uuid.uuid4().hex[:8]}"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "leaky"\nattributes:\n  ImageComments: keep\n')
    port = free_port()
    env = relay_env({}, data_dir=tmp_path / "var", amqp_url=AMQP_URL, queue_prefix=prefix,
                    api_port=port, log_level="DEBUG", deid_recipe=recipe,
                    destinations="dicom", dicom_host="127.0.0.1", dicom_port=free_port(),
                    dicom_timeout=2, max_attempts=2, retry_base_delay=0.2, watch_interval=0.2,
                    stable_age=1, pixel_ocr=False,
                    api_tokens=",".join(f"{role}:{hash_token(t)}" for role, t in TOKENS.items()),
                    deid_secret=generate_uid())
    (tmp_path / "var").mkdir()
    run_relay("db", "upgrade", env=env)
    proc = RelayProcess("up", env, tmp_path / "relay.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/readyz", proc), 60, "relay up")
        yield url, tmp_path / "var" / "incoming", prefix
    finally:
        proc.stop()
        delete_queues(prefix)


async def _dead_letter_headers(prefix: str) -> list[str]:
    headers: list[str] = []
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for suffix in ("deid", "send"):
            # The relay declared it (a quorum queue): read it as it is.
            queue = await channel.declare_queue(f"{prefix}.{suffix}.dead", passive=True)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                headers.append(repr(dict(message.headers or {})))
    return headers


def _finished(url: str) -> bool:
    series = httpx.get(f"{url}/api/v1/series", timeout=10,
                       headers={"Authorization": f"Bearer {TOKENS['reader']}"}).json()["items"]
    return len(series) >= 4 and all(s["status"] in ("FAILED", "QUARANTINED") for s in series)


def _readable(url: str) -> list[str]:
    """Every answer a reader or an operator gets about what the relay holds."""
    texts = [httpx.get(f"{url}/metrics", timeout=10).text]
    for role, token in TOKENS.items():
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                           timeout=10)
        series = api.get("/api/v1/series?limit=100").json()["items"]
        images = api.get("/api/v1/images?limit=500").json()["items"]
        paths = ["/api/v1/series?limit=100", "/api/v1/images?limit=500", "/api/v1/studies",
                 "/api/v1/failures", "/api/v1/stats", "/api/v1/search?limit=100",
                 *(f"/api/v1/series/{s['id']}" for s in series),
                 *(f"/api/v1/images/{i['id']}" for i in images)]
        texts += [f"{role} {path}: {api.get(path).text}" for path in paths]
        if role == "operator":
            texts += [api.post(f"/api/v1/series/{s['id']}/retry").text for s in series]
    return texts


def test_planted_values_reach_no_log_header_metric_or_reader_answer(
        relay: tuple[str, Path, str], tmp_path: Path) -> None:
    url, incoming, prefix = relay
    folders, planted = sweep_folders(tmp_path / "src")
    for folder in folders:
        deliver(folder, incoming)
    wait_until(lambda: _finished(url), 180, "every series to fail or be quarantined")
    answers_ = _readable(url)
    headers = asyncio.run(_dead_letter_headers(prefix))
    log = (tmp_path / "relay.log").read_text(errors="replace")
    assert headers, "the refused series left no dead letter"
    assert "leak guard" in " ".join(answers_) and "(0010,0020)" in " ".join(answers_)
    found = [f"{value!r} in the {where}: ...{text[max(0, m.start() - 150):m.end() + 60]}..."
             for where, text in [("log", log), ("amqp headers", "\n".join(headers)),
                                 *(("api or metrics", t) for t in answers_)]
             for value in planted
             for m in [re.search(re.escape(value), text, re.IGNORECASE)] if m]
    assert not found, "\n".join(found)
    # What the relay wrote to send on holds none of them either (the leaky
    # series' outputs sit in quarantine, where the guard put them).
    outputs = [p for p in (tmp_path / "var").rglob("deidentified/*.dcm")
               if "quarantine" not in p.parts]
    assert len(outputs) >= 3  # the refused series' two good images, the wrong-VR series'
    left = [f"{value!r} in {path.name}" for path in outputs for value in planted
            if value.lower().encode() in path.read_bytes().lower()]
    assert not left, left
