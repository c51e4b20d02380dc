"""Paths, object names and URLs are built from UIDs only: a value read from a
file that is not a UID fails its image and never names anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_sender.destinations import (
    NOT_A_UID,
    FolderDestination,
    OutgoingInstance,
    OutgoingSeries,
    UnsafeName,
    valid_uid,
)
from relay_sender.dicomweb import DicomWebDestination
from relay_sender.handlers import SendContext, send_series
from relay_sender.s3 import S3Destination
from relay_shared.models import Image, Series, Status
from tests.services.api.seed import make_runtime
from tests.services.sender.test_gcs import through_deid
from tests.services.sender.test_nifti import ct_slices, save
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import free_port

ESCAPING = "../../../../x"


def test_a_sop_instance_uid_that_climbs_out_fails_its_image_only(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    write_series(SeriesSpec(Patient("MRN-9009", "Noether^Emmy"), instances=3),
                 tmp_path / "series")
    series_id = through_deid(rt, tmp_path / "series")
    with Session(rt.engine) as session:
        images = list(session.exec(select(Image).where(Image.series_id == series_id)))
    victim = images[0]
    assert victim.id is not None
    output = rt.store.deidentified(series_id, victim.id)
    ds = dcmread(output)
    ds.SOPInstanceUID = ESCAPING  # as a file whose UIDs the profile did not replace
    ds.save_as(output)
    outbox = tmp_path / "deep" / "er" / "outbox"

    send_series(SendContext(rt.engine, rt.store, [FolderDestination(outbox)]), series_id)

    assert not list(tmp_path.rglob("x.dcm")) and not list(tmp_path.rglob("x.dcm.part"))
    assert len(list(outbox.rglob("*.dcm"))) == 2
    with Session(rt.engine) as session:
        failed = session.get(Image, victim.id)
        assert failed is not None and failed.status is Status.FAILED
        assert failed.reason == NOT_A_UID
        others = [session.get(Image, i.id) for i in images[1:]]
        assert all(i is not None and i.status is Status.DONE for i in others)


def test_a_series_whose_every_image_is_unnamable_fails_with_the_reason(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    write_series(SeriesSpec(Patient("MRN-9010", "Germain^Sophie"), instances=2),
                 tmp_path / "series")
    series_id = through_deid(rt, tmp_path / "series")
    for output in (rt.store.series_dir(series_id) / "deidentified").iterdir():
        ds = dcmread(output)
        ds.StudyInstanceUID = "1.2/../../evil"
        ds.save_as(output)
    send_series(SendContext(rt.engine, rt.store, [FolderDestination(tmp_path / "out")]),
                series_id)
    with Session(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.status is Status.FAILED
        assert series.error == NOT_A_UID
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [ESCAPING, "", "1.2.3/4", "1.2.03", "1..2", "1.2.",
                                   "1.2.3\x00", "1.2.3 ", "%2e%2e", "1." + "2" * 64,
                                   "1.2.3?x=1", "1.2.3#", "C:\\x"])
def test_what_is_not_a_uid_names_nothing(tmp_path: Path, value: str) -> None:
    assert not valid_uid(value)
    good = "1.2.840.113619.2.55.3"
    instance = OutgoingInstance(1, value, tmp_path / "f.dcm")
    with pytest.raises(UnsafeName):
        FolderDestination(tmp_path).missing(OutgoingSeries(1, good, good, [instance]))
    with pytest.raises(UnsafeName):  # refused before any request is made
        DicomWebDestination("http://127.0.0.1:9").held(OutgoingSeries(1, value, good, []))


@pytest.mark.parametrize("value", [ESCAPING, "1.2.3/4", "%2e%2e", "1.2.3\x00"])
def test_an_object_store_refuses_a_name_that_is_not_a_uid_before_any_request(
        tmp_path: Path, value: str) -> None:
    """S3 and GCS share the naming: an unreachable endpoint shows that the
    refusal comes before the store is asked anything."""
    (path,) = save(ct_slices(SeriesSpec(Patient("MRN-9011", "Hopper^Grace"), instances=1)),
                   tmp_path / "one")
    series = OutgoingSeries(1, "2.25.1", "2.25.2", [OutgoingInstance(1, value, path)])
    store = S3Destination("relay-names", endpoint=f"http://127.0.0.1:{free_port()}",
                          region="eu-west-1", access_key_id="k", secret_access_key="s",
                          timeout=2)
    with pytest.raises(UnsafeName):
        store.missing(series)
    with pytest.raises(UnsafeName):
        store.send(series)


@pytest.mark.parametrize("value", ["0", "1.2.840.10008.1.2", "2.25.1234567890123456789",
                                   "1.2.826.0.1.3680043.8.498.12345"])
def test_a_uid_is_a_name(value: str) -> None:
    assert valid_uid(value)


def test_a_series_folder_linked_out_of_the_outbox_is_refused(tmp_path: Path) -> None:
    """The series' folder is resolved once per series: a link in the outbox that
    points elsewhere is refused before any file is placed through it."""
    (path,) = save(ct_slices(SeriesSpec(Patient("MRN-9012", "Lovelace^Ada"), instances=1)),
                   tmp_path / "one")
    outbox, elsewhere = tmp_path / "outbox", tmp_path / "elsewhere"
    (outbox / "2.25.1").mkdir(parents=True)
    elsewhere.mkdir()
    (outbox / "2.25.1" / "2.25.2").symlink_to(elsewhere)
    series = OutgoingSeries(1, "2.25.1", "2.25.2", [OutgoingInstance(1, "2.25.3", path)])
    destination = FolderDestination(outbox)
    for attempt in (destination.send, destination.missing):
        with pytest.raises(UnsafeName):
            attempt(series)
    assert not list(elsewhere.iterdir())


def test_a_link_left_in_place_of_a_sent_file_is_not_counted_as_held(tmp_path: Path) -> None:
    (path,) = save(ct_slices(SeriesSpec(Patient("MRN-9013", "Curie^Marie"), instances=1)),
                   tmp_path / "one")
    series = OutgoingSeries(1, "2.25.1", "2.25.2", [OutgoingInstance(1, "2.25.3", path)])
    destination = FolderDestination(tmp_path / "outbox")
    destination.send(series)
    sent = tmp_path / "outbox" / "2.25.1" / "2.25.2" / "2.25.3.dcm"
    assert destination.missing(series) == set()
    sent.unlink()
    sent.symlink_to(path)  # same size, but not a file the outbox holds
    assert destination.missing(series) == {"2.25.3"}
    destination.send(series)
    assert not sent.is_symlink() and destination.missing(series) == set()
