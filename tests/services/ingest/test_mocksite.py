"""The mock site's studies and schedule, with no network and no clock."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread

from relay_ingest import mocksite
from relay_ingest.handlers import is_finished


def test_studies_hide_identifying_values_where_real_ones_hide() -> None:
    profile = mocksite.Profile(modalities=("MR",), series_per_study=(2, 2),
                               instances_per_series=(3, 3), size=16, seed=7)
    study = mocksite.StudyMaker(profile).study()
    assert [len(series) for series in study] == [3, 3]
    ds = study[1][2]
    name, patient_id = str(ds.PatientName), ds.PatientID
    assert name.split("^")[0] in mocksite.FAMILY and ds.Modality == "MR"
    assert patient_id in ds.ImageComments and name.split("^")[0] in ds.StudyDescription
    assert ds.RequestAttributesSequence[0].AccessionNumber == ds.AccessionNumber
    assert ds.OtherPatientIDsSequence[0].PatientID
    assert ds.private_block(0x0029, "MOCKSITE 1.0")[0x10].value == name
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == study[1][0].SOPInstanceUID
    assert len({s[0].SeriesInstanceUID for s in study}) == 2
    assert len({ds.StudyInstanceUID for s in study for ds in s}) == 1


def test_the_same_seed_makes_the_same_people() -> None:
    def names(seed: int) -> list[str]:
        maker = mocksite.StudyMaker(mocksite.Profile(seed=seed, instances_per_series=(1, 1)))
        return [str(maker.study()[0][0].PatientName) for _ in range(5)]
    assert names(3) == names(3)


def test_a_run_keeps_to_its_schedule_and_counts_what_it_sent(tmp_path: Path) -> None:
    slept: list[float] = []
    profile = mocksite.Profile(studies_per_hour=3600 * 4, instances_per_series=(2, 2),
                               series_per_study=(1, 1), size=8)
    assert list(mocksite.schedule(profile.studies_per_hour, 1.0)) == [0.0, 0.25, 0.5, 0.75]
    push = mocksite.push_as_folder(tmp_path / "incoming")
    figures = mocksite.run(profile, push, 1.0, sleep=slept.append)
    assert (figures.studies, figures.series, figures.instances) == (4, 4, 8)
    folders = sorted((tmp_path / "incoming").iterdir())
    assert len(folders) == 4 and all(is_finished(f) for f in folders)
    assert dcmread(next(folders[0].iterdir())).PatientName
    assert any(line.startswith("studies per hour: asked 14400") for line in figures.lines(14400))
