"""The signed manifest of a delivered series, checked by `relay verify` as a recipient would:
beside the files in an outbox folder and a GCS bucket (the emulator), and from the API for
an Orthanc, with the files Orthanc gives back. One byte changed in a file or in the
manifest, and it is refused with the file named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless
from sqlmodel import Session, select

from relay_sender.destinations import (
    Destination,
    DestinationError,
    FolderDestination,
    OutgoingSeries,
)
from relay_sender.handlers import SendContext, send_series
from relay_sender.manifests import ManifestWriter
from relay_sender.orthanc import OrthancDestination
from relay_sender.transcode import TranscodingDestination
from relay_shared.deid.table import table_sha256
from relay_shared.manifest import MANIFEST_NAME, relay_version
from relay_shared.models import Event, Series, Status
from relay_shared.runtime import Runtime
from relay_shared.signing import signing_key_for
from tests.services.api.seed import client, make_runtime
from tests.services.sender.test_gcs import (  # noqa: F401 - the emulator fixture
    BUCKET,
    Emulator,
    ct_series,
    destination,
    emulator,
    prefix,
    through_deid,
)
from tests.services.sender.test_s3 import destination as s3_destination
from tests.services.sender.test_s3 import moto  # noqa: F401 - the moto fixture
from tests.services.sender.test_s3 import relay as s3_relay
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.s3_server import MotoS3
from tests.support.services import Orthanc, relay_env, run_relay

PATIENT = Patient("MRN-8118", "Noether^Emmy", accession="ACC-8118")


def writer(rt: Runtime) -> ManifestWriter:
    key = signing_key_for(rt.settings)
    assert key is not None
    return ManifestWriter(rt.engine, key, relay_version())


def verify(*args: object) -> tuple[int, str]:
    result = run_relay("verify", *map(str, args), env=relay_env({}), check=False)
    return result.returncode, result.stdout + result.stderr


def flip_one_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) - 3 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def downloaded_beside_the_manifest(store: MotoS3, under: str, into: Path) -> Path:
    """Every object of the series' folder in the bucket, as a recipient downloads it."""
    objects = store.objects(under)
    (name,) = [n for n in objects if n.endswith("/" + MANIFEST_NAME)]
    folder = name.rsplit("/", 1)[0] + "/"
    into.mkdir()
    for key in objects:
        if key.startswith(folder):
            (into / key.removeprefix(folder)).write_bytes(store.read(key))
    return into


def deidentified_series(tmp_path: Path, rt: Runtime, instances: int = 3) -> int:
    write_series(SeriesSpec(PATIENT, instances=instances), tmp_path / "series")
    return through_deid(rt, tmp_path / "series")


def test_outbox_manifest_verifies_and_one_changed_byte_is_named(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    series_id = deidentified_series(tmp_path, rt)
    outbox = tmp_path / "outbox"
    send_series(SendContext(rt.engine, rt.store, [FolderDestination(outbox)], writer(rt)),
                series_id)
    (manifest,) = outbox.rglob(MANIFEST_NAME)
    files = sorted(manifest.parent.glob("*.dcm"))
    assert len(files) == 3

    document = json.loads(manifest.read_bytes())
    assert document["deidentification"]["table_e1_1_sha256"] == table_sha256()
    assert document["deidentification"]["pseudonym_key_id"] == "k1"
    assert document["deidentification"]["options"] == ["rtnLongModifDatesOpt"]
    assert document["project"]["name"] == "default"
    (confirmation,) = document["destinations"]
    assert confirmation["name"] == "outbox" and confirmation["instances_confirmed"] == 3
    assert confirmation["confirmed_at"]
    text = manifest.read_text()
    for value in PATIENT.identifying_values():
        assert value not in text

    code, out = verify(manifest)
    assert code == 0, out
    assert "manifest verified" in out and out.count("ok    ") == 3

    flip_one_byte(files[1])
    code, out = verify(manifest)
    assert code == 1
    assert f"FAIL  {files[1]}: its SHA-256 is not the one the manifest gives" in out
    flip_one_byte(files[1])  # back as it was
    assert verify(manifest)[0] == 0

    files[2].unlink()
    code, out = verify(manifest)
    assert code == 1 and "listed in the manifest, not found" in out

    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status is Status.DONE  # type: ignore[union-attr]
        assert session.exec(select(Event).where(Event.series_id == series_id,
                                                Event.kind == "manifest")).first()


def test_a_changed_byte_in_the_manifest_is_refused(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    series_id = deidentified_series(tmp_path, rt, instances=2)
    outbox = tmp_path / "outbox"
    send_series(SendContext(rt.engine, rt.store, [FolderDestination(outbox)], writer(rt)),
                series_id)
    (manifest,) = outbox.rglob(MANIFEST_NAME)
    original = manifest.read_bytes()
    # One hex digit of the pseudonym key's record: still JSON, no longer what was signed.
    at = original.index(b'"options"') + len(b'"options": [\n      "r')
    flip_one_byte(manifest, at)
    code, out = verify(manifest)
    assert code == 1
    assert "FAIL  the signature does not match the manifest's content" in out
    manifest.write_bytes(original)
    flip_one_byte(manifest, original.index(b"{"))  # no longer JSON at all
    code, out = verify(manifest)
    assert code == 2 and "not JSON" in out


def test_the_api_serves_the_manifest_and_the_key_it_is_checked_with(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    series_id = deidentified_series(tmp_path, rt, instances=2)
    outbox = tmp_path / "outbox"
    api = client(rt)
    assert api.get(f"/api/v1/series/{series_id}/manifest").status_code == 404
    send_series(SendContext(rt.engine, rt.store, [FolderDestination(outbox)], writer(rt)),
                series_id)
    (manifest,) = outbox.rglob(MANIFEST_NAME)
    served = api.get(f"/api/v1/series/{series_id}/manifest")
    assert served.status_code == 200 and served.content == manifest.read_bytes()
    key = api.get("/api/v1/signing-key").json()
    assert key["key_id"] == json.loads(served.content)["signature"]["key_id"]
    assert key["derived"] is True
    (tmp_path / "relay.pem").write_text(key["public_key_pem"])
    code, out = verify(manifest, "--public-key", tmp_path / "relay.pem")
    assert code == 0 and "compare it with" not in out
    code, out = verify(manifest, "--key-id", "0" * 64)
    assert code == 1 and f"signed with key {key['key_id']}, not the expected" in out


@pytest.mark.orthanc
def test_after_a_real_send_to_orthanc_the_files_it_holds_verify(
        tmp_path: Path, orthanc: Orthanc) -> None:
    rt = make_runtime(tmp_path / "var")
    series_id = deidentified_series(tmp_path, rt)
    send_series(SendContext(rt.engine, rt.store, [OrthancDestination(orthanc.url)], writer(rt)),
                series_id)
    manifest = tmp_path / "orthanc.manifest.json"
    manifest.write_bytes(client(rt).get(f"/api/v1/series/{series_id}/manifest").content)
    document = json.loads(manifest.read_bytes())
    (confirmation,) = document["destinations"]
    assert confirmation["kind"] == "orthanc" and confirmation["instances_confirmed"] == 3
    received = tmp_path / "from-orthanc"
    received.mkdir()
    for n, instance in enumerate(orthanc.instances()):
        (received / f"{n}.dcm").write_bytes(
            httpx.get(f"{orthanc.url}/instances/{instance}/file", timeout=30).content)
    files = sorted(received.iterdir())

    code, out = verify(manifest, *files)
    assert code == 0, out
    assert out.count("ok    ") == 3
    assert verify(manifest)[0] == 0  # the signature alone, nothing beside it
    assert "3 instance(s) of the manifest were not checked" in verify(manifest)[1]

    flip_one_byte(files[0])
    code, out = verify(manifest, *files)
    assert code == 1 and f"FAIL  {files[0]}: not an instance the manifest lists" in out
    flip_one_byte(files[0])
    flip_one_byte(manifest, manifest.read_bytes().index(b'"relay_version"') + 20)
    code, out = verify(manifest, *files)
    assert code == 1 and "the signature does not match" in out


@pytest.mark.gcs
def test_after_a_send_to_gcs_the_manifest_beside_the_objects_verifies(
        tmp_path: Path, emulator: Emulator, prefix: str) -> None:  # noqa: F811
    rt = make_runtime(tmp_path / "var", destinations="gcs", gcs_bucket=BUCKET,
                      gcs_endpoint=emulator.url, gcs_prefix=prefix, gcs_format="dicom")
    series_id = deidentified_series(tmp_path, rt)
    gcs = destination(rt)
    send_series(SendContext(rt.engine, rt.store, [gcs], writer(rt)), series_id)
    objects = emulator.objects(prefix)
    (name,) = [n for n in objects if n.endswith("/" + MANIFEST_NAME)]
    downloaded = tmp_path / "bucket"
    downloaded.mkdir()
    for object_name, blob in objects.items():
        if object_name.startswith(name.rsplit("/", 1)[0]):
            (downloaded / object_name.rsplit("/", 1)[1]).write_bytes(blob.download_as_bytes())
    manifest = downloaded / MANIFEST_NAME
    assert manifest.read_bytes() == client(rt).get(
        f"/api/v1/series/{series_id}/manifest").content
    (confirmation,) = json.loads(manifest.read_bytes())["destinations"]
    assert confirmation["kind"] == "gcs" and confirmation["instances_confirmed"] == 3

    code, out = verify(manifest)
    assert code == 0, out
    assert out.count("ok    ") == 3
    (first, *_) = sorted(downloaded.glob("*.dcm"))
    flip_one_byte(first)
    code, out = verify(manifest)
    assert code == 1 and re.search(rf"FAIL  {re.escape(str(first))}: its SHA-256", out)


def test_signing_key_new_makes_the_key_the_relay_then_shows(tmp_path: Path) -> None:
    key = tmp_path / "relay-signing.pem"
    made = run_relay("signing-key", "new", "--out", str(key), env=relay_env({}))
    key_id = made.stdout.splitlines()[0].removeprefix("key id: ")
    assert key.stat().st_mode & 0o777 == 0o600
    shown = run_relay("signing-key", "show", env=relay_env({}, signing_key=key))
    assert shown.stdout.splitlines()[0] == f"key id: {key_id}"
    again = run_relay("signing-key", "new", "--out", str(key), env=relay_env({}), check=False)
    assert again.returncode == 2 and "never overwritten" in again.stderr


@pytest.mark.gcs
def test_a_retry_after_the_manifest_was_placed_places_the_same_bytes(
        tmp_path: Path, emulator: Emulator, prefix: str) -> None:  # noqa: F811
    """The bucket never overwrites: a retry must build the very manifest it placed."""
    rt = make_runtime(tmp_path / "var", destinations="gcs", gcs_bucket=BUCKET,
                      gcs_endpoint=emulator.url, gcs_prefix=prefix, gcs_format="dicom")
    series_id = deidentified_series(tmp_path, rt, instances=2)
    gcs = destination(rt)

    def placed_then_lost(series: OutgoingSeries, destinations: list[Destination]) -> None:
        writer(rt)(series, destinations)
        raise DestinationError("the answer to the last upload was lost")

    with pytest.raises(DestinationError):
        send_series(SendContext(rt.engine, rt.store, [gcs], placed_then_lost), series_id)
    (name,) = [n for n in emulator.objects(prefix) if n.endswith("/" + MANIFEST_NAME)]
    first = emulator.objects(prefix)[name]
    send_series(SendContext(rt.engine, rt.store, [gcs], writer(rt)), series_id)
    again = emulator.objects(prefix)[name]
    assert again.generation == first.generation  # skipped: the same bytes, not refused
    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status is Status.DONE  # type: ignore[union-attr]


@pytest.mark.s3
def test_after_a_send_to_s3_the_manifest_beside_the_objects_verifies(
        tmp_path: Path, moto: MotoS3, prefix: str) -> None:  # noqa: F811
    rt = make_runtime(tmp_path / "var", destinations="s3", s3_prefix=prefix, **moto.settings())
    series_id = deidentified_series(tmp_path, rt)
    send_series(SendContext(rt.engine, rt.store, [s3_destination(rt)], writer(rt)), series_id)
    downloaded = downloaded_beside_the_manifest(moto, prefix, tmp_path / "bucket")
    (confirmation,) = json.loads((downloaded / MANIFEST_NAME).read_bytes())["destinations"]
    assert confirmation["kind"] == "s3" and confirmation["instances_confirmed"] == 3
    code, out = verify(downloaded / MANIFEST_NAME)
    assert code == 0, out
    assert out.count("ok    ") == 3
    (first, *_) = sorted(downloaded.glob("*.dcm"))
    flip_one_byte(first, 200)
    code, out = verify(downloaded / MANIFEST_NAME)
    assert code == 1 and f"FAIL  {first}: its SHA-256" in out


@pytest.mark.s3
def test_a_series_sent_as_one_volume_has_the_volume_in_its_manifest(
        tmp_path: Path, moto: MotoS3, prefix: str) -> None:  # noqa: F811
    """The bucket holds a NIfTI volume, not the DICOM files: the manifest names the
    volume's bytes, and the volume alone verifies for every instance."""
    rt = s3_relay(tmp_path, moto, prefix, fmt="nifti")
    ct_series(tmp_path / "ct", instances=6)
    series_id = through_deid(rt, tmp_path / "ct")
    send_series(SendContext(rt.engine, rt.store, [s3_destination(rt)], writer(rt)), series_id)
    downloaded = downloaded_beside_the_manifest(moto, prefix, tmp_path / "bucket")
    assert sorted(p.name for p in downloaded.iterdir()) == sorted([
        MANIFEST_NAME, "series.json", "series.nii.gz"])
    (confirmation,) = json.loads((downloaded / MANIFEST_NAME).read_bytes())["destinations"]
    (volume,) = confirmation["objects_as_sent"]
    assert volume["file"] == "series.nii.gz" and volume["made_of_instances"] == 6
    assert volume["bytes"] == (downloaded / "series.nii.gz").stat().st_size
    code, out = verify(downloaded / MANIFEST_NAME)
    assert code == 0, out
    assert "the volume made of all 6 instances" in out
    flip_one_byte(downloaded / "series.nii.gz", 100)
    code, out = verify(downloaded / MANIFEST_NAME)
    assert code == 1 and "its SHA-256 is not the one the manifest gives for the volume" in out


def test_a_production_sender_without_a_signing_key_stops_naming_both_ways_out(
        tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", env="production", metrics_port=0)
    run_relay("db", "upgrade", env=env)
    result = run_relay("sender", env=env, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "RELAY_SIGNING_KEY: not set in production" in result.stderr
    assert "RELAY_MANIFESTS=false" in result.stderr and "Traceback" not in result.stderr


def test_an_outbox_sent_in_another_transfer_syntax_verifies_against_what_it_holds(
        tmp_path: Path) -> None:
    """A destination with a transfer_syntax list holds transcoded bytes: the manifest
    lists those under the destination, and they verify as the instances they are."""
    rt = make_runtime(tmp_path / "var")
    series_id = deidentified_series(tmp_path, rt)
    outbox = tmp_path / "outbox"
    rle = TranscodingDestination(FolderDestination(outbox), [RLELossless])
    send_series(SendContext(rt.engine, rt.store, [rle], writer(rt)), series_id)
    (manifest,) = outbox.rglob(MANIFEST_NAME)
    files = sorted(manifest.parent.glob("*.dcm"))
    assert {str(dcmread(f).file_meta.TransferSyntaxUID) for f in files} == {RLELossless}

    document = json.loads(manifest.read_bytes())
    (confirmation,) = document["destinations"]
    as_sent = {i["sop_instance_uid"]: i["sha256"] for i in confirmation["instances_as_sent"]}
    assert sorted(as_sent) == sorted(i["sop_instance_uid"] for i in document["instances"])
    assert not set(as_sent.values()) & {i["sha256"] for i in document["instances"]}

    code, out = verify(manifest)
    assert code == 0, out
    assert out.count("ok    ") == 3
    flip_one_byte(files[0])
    code, out = verify(manifest)
    assert code == 1 and str(files[0]) in out
