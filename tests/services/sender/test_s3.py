"""The S3 destination against moto in server mode on loopback: series through ingest,
deid and the sender into the bucket as DICOM files or one NIfTI volume with its sidecar,
large files in parts, and objects altered or removed after their upload caught before
any clean-up."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.handlers import SendContext, send_series
from relay_sender.main import build_destinations
from relay_sender.objectstore import instances_digest
from relay_sender.s3 import S3Destination
from relay_shared.models import Delivery, DeliveryState, Event, Series, SeriesMetadata, Status
from relay_shared.runtime import Runtime
from tests.services.api.seed import make_runtime
from tests.services.sender.test_gcs import (
    FIELDS,
    PATIENT,
    assert_nothing_identifying,
    ct_series,
    outgoing,
    through_deid,
)
from tests.services.sender.test_nifti import ct_slices, save
from tests.support.dicom_factory import SeriesSpec
from tests.support.s3_server import MotoS3
from tests.support.services import free_port

BUCKET = "relay-research-s3"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3(tmp_path_factory.mktemp("s3") / "moto.log", BUCKET)
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def relay(tmp_path: Path, moto: MotoS3, prefix: str, fmt: str = "dicom") -> Runtime:
    return make_runtime(tmp_path / "var", destinations="s3", s3_prefix=prefix, s3_format=fmt,
                        s3_sidecar_fields=FIELDS, **moto.settings())


def destination(rt: Runtime) -> S3Destination:
    (built,) = build_destinations(rt.settings, rt.engine)
    assert isinstance(built, S3Destination)
    return built


def status(rt: Runtime, series_id: int) -> Status:
    with Session(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series.status


def send_until_done(rt: Runtime, series_id: int) -> None:
    send_series(SendContext(rt.engine, rt.store, [destination(rt)]), series_id)
    assert status(rt, series_id) is Status.DONE


def one_instance(folder: Path) -> OutgoingSeries:
    (path,) = save(ct_slices(SeriesSpec(PATIENT, instances=1)), folder)
    return OutgoingSeries(1, "2.25.1", "2.25.2", [OutgoingInstance(1, "2.25.3", path)])


def versions(moto: MotoS3, prefix: str) -> dict[str, tuple[str, object]]:
    return {key: (item["ETag"], item["LastModified"])
            for key, item in moto.objects(prefix).items()}


@pytest.mark.s3
def test_a_dicom_series_arrives_file_by_file_verified(tmp_path: Path, moto: MotoS3,
                                                      prefix: str) -> None:
    rt = relay(tmp_path, moto, prefix)
    spec = ct_series(tmp_path / "ct", instances=5)
    series_id = through_deid(rt, tmp_path / "ct")
    series = outgoing(rt, series_id)
    sent = {i.sop_instance_uid: i.path.read_bytes() for i in series.instances}
    pseudonym = dcmread(series.instances[0].path, stop_before_pixels=True).PatientID
    send_until_done(rt, series_id)
    assert not rt.store.series_dir(series_id).exists()
    objects = moto.objects(prefix)
    base = f"{prefix}/{pseudonym}/{series.study_instance_uid}/" \
           f"{series.series_instance_uid}/"
    assert sorted(objects) == sorted([base + "series.json",
                                      *(f"{base}{uid}.dcm" for uid in sent)])
    for uid, content in sent.items():
        assert moto.read(f"{base}{uid}.dcm") == content
        head = moto.client().head_object(Bucket=BUCKET, Key=f"{base}{uid}.dcm",
                                         ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] and head["ContentType"] == "application/dicom"
    sidecar = json.loads(moto.read(base + "series.json"))
    assert sidecar["Modality"] == "CT" and sidecar["StudyInstanceUID"] == \
        series.study_instance_uid
    assert_nothing_identifying(json.dumps(sidecar) + " ".join(objects), spec)
    with Session(rt.engine) as session:
        row = session.exec(select(SeriesMetadata)).one()
        assert row.location == f"s3://{BUCKET}/{base}" and row.format == "dicom"


@pytest.mark.s3
def test_a_ct_series_arrives_as_one_volume_with_its_sidecar(tmp_path: Path, moto: MotoS3,
                                                            prefix: str) -> None:
    rt = relay(tmp_path, moto, prefix, fmt="nifti")
    ct_series(tmp_path / "ct", instances=12)
    series_id = through_deid(rt, tmp_path / "ct")
    digest = instances_digest(outgoing(rt, series_id))
    send_until_done(rt, series_id)
    objects = moto.objects(prefix)
    assert sorted(key.rsplit("/", 1)[1] for key in objects) == ["series.json", "series.nii.gz"]
    volume_key = next(key for key in objects if key.endswith(".nii.gz"))
    volume = nib.Nifti1Image.from_bytes(gzip.decompress(moto.read(volume_key)))
    assert volume.shape == (28, 32, 12)
    sidecar_key = next(key for key in objects if key.endswith("series.json"))
    head = moto.client().head_object(Bucket=BUCKET, Key=sidecar_key)
    assert head["Metadata"] == {"relay-format": "nifti"}
    volume_head = moto.client().head_object(Bucket=BUCKET, Key=volume_key)
    assert volume_head["Metadata"]["relay-instances-sha256"] == digest


@pytest.mark.s3
def test_a_single_image_goes_as_dicom_with_the_reason(tmp_path: Path, moto: MotoS3,
                                                      prefix: str) -> None:
    rt = relay(tmp_path, moto, prefix, fmt="nifti")
    ct_series(tmp_path / "one", instances=1)
    series_id = through_deid(rt, tmp_path / "one")
    send_until_done(rt, series_id)
    with Session(rt.engine) as session:
        assert session.exec(select(Event).where(Event.kind == "s3-as-dicom")).one().detail \
            == "a single image"


@pytest.mark.s3
def test_a_repeated_send_changes_nothing(tmp_path: Path, moto: MotoS3, prefix: str) -> None:
    rt = relay(tmp_path, moto, prefix)
    ct_series(tmp_path / "ct", instances=4)
    series = outgoing(rt, through_deid(rt, tmp_path / "ct"))
    dest = destination(rt)
    assert dest.missing(series) == {i.sop_instance_uid for i in series.instances}
    dest.send(series)
    before = versions(moto, prefix)
    dest.send(series)
    destination(rt).send(series)  # another sender process, after a restart
    assert versions(moto, prefix) == before
    assert dest.missing(series) == set()


def tamper_after_send(dest: S3Destination, moto: MotoS3, monkeypatch: pytest.MonkeyPatch,
                      change: str) -> list[str]:
    """Let the destination upload for real, then change one .dcm in the bucket before
    the sender asks whether it holds the series, as a faulty store or another writer
    would. Returns the keys changed."""
    changed: list[str] = []
    send = dest.send

    def send_then_tamper(series: OutgoingSeries) -> None:
        send(series)
        if changed:
            return
        key = next(k for k in sorted(moto.objects(dest._prefix)) if k.endswith(".dcm"))
        if change == "remove":
            moto.client().delete_object(Bucket=BUCKET, Key=key)
        else:  # same size, one byte different: only the checksum can tell
            content = bytearray(moto.read(key))
            content[-1] ^= 0xFF
            moto.client().put_object(Bucket=BUCKET, Key=key, Body=bytes(content))
        changed.append(key)

    monkeypatch.setattr(dest, "send", send_then_tamper)
    return changed


@pytest.mark.s3
def test_an_object_altered_after_upload_stops_the_clean_up(
        tmp_path: Path, moto: MotoS3, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = relay(tmp_path, moto, prefix)
    ct_series(tmp_path / "ct", instances=3)
    series_id = through_deid(rt, tmp_path / "ct")
    dest = destination(rt)
    changed = tamper_after_send(dest, moto, monkeypatch, "alter")
    with pytest.raises(DestinationError, match="different content"):
        send_series(SendContext(rt.engine, rt.store, [dest]), series_id)
    assert len(changed) == 1
    assert status(rt, series_id) is Status.DONEPROCESSING
    assert rt.store.series_dir(series_id).exists()  # nothing removed: it can be resent
    with Session(rt.engine) as session:
        states = [d.state for d in session.exec(select(Delivery))]
    assert states.count(DeliveryState.FAILED) == 3
    assert dest.missing(outgoing(rt, series_id)) == {changed[0].rsplit("/", 1)[1][:-4]}


@pytest.mark.s3
def test_an_object_removed_after_upload_is_sent_again(
        tmp_path: Path, moto: MotoS3, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = relay(tmp_path, moto, prefix)
    ct_series(tmp_path / "ct", instances=3)
    series_id = through_deid(rt, tmp_path / "ct")
    series = outgoing(rt, series_id)
    contents = {i.sop_instance_uid: i.path.read_bytes() for i in series.instances}
    dest = destination(rt)
    changed = tamper_after_send(dest, moto, monkeypatch, "remove")
    send_series(SendContext(rt.engine, rt.store, [dest]), series_id)
    assert len(changed) == 1 and status(rt, series_id) is Status.DONE
    uid = changed[0].rsplit("/", 1)[1][:-4]
    assert moto.read(changed[0]) == contents[uid]


@pytest.mark.s3
def test_a_large_file_goes_in_parts_and_is_verified(tmp_path: Path, moto: MotoS3,
                                                    prefix: str) -> None:
    spec = SeriesSpec(PATIENT, instances=1, rows=1800, columns=1800)  # 6.2 MiB of pixels
    (path,) = save(ct_slices(spec), tmp_path / "big")
    series = OutgoingSeries(1, spec.study_uid, spec.series_uid,
                            [OutgoingInstance(1, spec.sop_uids[0], path)])
    dest = S3Destination(BUCKET, prefix, endpoint=moto.url, region="eu-west-1",
                         access_key_id="k", secret_access_key="s",
                         multipart_threshold=5 * MIB, part_size=5 * MIB)
    dest.send(series)
    key = next(k for k in moto.objects(prefix) if k.endswith(".dcm"))
    head = moto.client().head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-2")  # two parts
    assert dest.missing(series) == set()
    assert moto.read(key) == path.read_bytes()
    # The same bytes written again in one piece carry another checksum form: still held.
    moto.client().put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
    assert dest.missing(series) == set()
    content = bytearray(path.read_bytes())
    content[100] ^= 0xFF
    moto.client().put_object(Bucket=BUCKET, Key=key, Body=bytes(content))
    assert dest.missing(series) == {spec.sop_uids[0]}


def test_an_unreachable_store_is_a_retryable_error(tmp_path: Path) -> None:
    dest = S3Destination(BUCKET, endpoint=f"http://127.0.0.1:{free_port()}",
                         region="eu-west-1", access_key_id="k", secret_access_key="s",
                         timeout=2)
    with pytest.raises(DestinationError, match="s3 listing failed: EndpointConnectionError"):
        dest.missing(one_instance(tmp_path / "one"))


@pytest.mark.s3
def test_a_missing_bucket_is_named_by_its_error_code(tmp_path: Path, moto: MotoS3) -> None:
    dest = S3Destination("no-such-bucket", endpoint=moto.url, region="eu-west-1",
                         access_key_id="k", secret_access_key="s")
    with pytest.raises(DestinationError, match="s3 listing failed: NoSuchBucket"):
        dest.send(one_instance(tmp_path / "one"))


def without_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No keys anywhere in the AWS chain, and never the instance metadata address."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.s3
def test_without_keys_the_aws_credential_chain_is_used(
        tmp_path: Path, moto: MotoS3, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    without_aws_credentials(monkeypatch, tmp_path)
    series = one_instance(tmp_path / "one")
    with pytest.raises(DestinationError, match="s3: no credentials; set RELAY_S3_ACCESS_KEY_ID"):
        S3Destination(BUCKET, prefix, endpoint=moto.url, region="eu-west-1").send(series)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-the-environment")
    dest = S3Destination(BUCKET, prefix, endpoint=moto.url, region="eu-west-1")
    dest.send(series)
    assert dest.missing(series) == set()
