"""Two studies of one patient, de-identified apart, still fit together."""

import json
import subprocess
import sys
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from relay_shared.deid import DeidConfig, Pseudonymizer, deidentify

from .planting import SECRET, reread
from .test_structure import base

CONFIG = DeidConfig(options=frozenset({"rtnLongModifDatesOpt"}))


def study(study_uid: str, date: str, referenced: str | None = None) -> Dataset:
    ds = base()
    ds.PatientName = "Doe^John"
    ds.PatientID = "mrn-4711 "
    ds.StudyInstanceUID = study_uid
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = study_uid + ".1"
    ds.FrameOfReferenceUID = "1.2.999.500"
    ds.StudyDate = date
    if referenced:
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = referenced
        ds.ReferencedImageSequence = Sequence([ref])
    return ds


def run(ds: Dataset, pseudo: Pseudonymizer) -> Dataset:
    ids = pseudo.identifiers_for(str(ds.PatientID), str(ds.PatientName))
    return deidentify(reread(ds), ids, pseudo, CONFIG).dataset


def test_two_pseudonymizers_agree() -> None:
    first = run(study("1.2.999.100", "20240105"), Pseudonymizer(SECRET))
    second = run(study("1.2.999.200", "20240301", referenced="1.2.999.100.1"),
                 Pseudonymizer(SECRET))
    assert first.PatientID == second.PatientID
    assert first.PatientName == second.PatientName
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert first.StudyInstanceUID != second.StudyInstanceUID
    # 56 days apart before, 56 days apart after: one shift per patient.
    from datetime import datetime

    def day(value: str) -> datetime:
        return datetime.strptime(value, "%Y%m%d")

    assert (day(second.StudyDate) - day(first.StudyDate)).days == 56
    assert first.StudyDate != "20240105"


SCRIPT = """
import json, sys
from pydicom import dcmread
from relay_shared.deid import DeidConfig, Pseudonymizer, deidentify
pseudo = Pseudonymizer(bytes.fromhex(sys.argv[2]))
ds = dcmread(sys.argv[1], stop_before_pixels=True)
ids = pseudo.identifiers_for(str(ds.PatientID), str(ds.PatientName))
out = deidentify(ds, ids, pseudo, DeidConfig(options=frozenset({"rtnLongModifDatesOpt"}))).dataset
refs = [r.ReferencedSOPInstanceUID for r in out.get("ReferencedImageSequence", [])]
print(json.dumps({"id": out.PatientID, "name": str(out.PatientName), "shift": ids.date_shift_days,
                  "sop": out.SOPInstanceUID, "frame": out.FrameOfReferenceUID, "refs": refs}))
"""


def test_two_processes_agree(tmp_path: Path) -> None:
    paths = []
    for name, ds in (("a", study("1.2.999.100", "20240105")),
                     ("b", study("1.2.999.200", "20240301", referenced="1.2.999.100.1"))):
        path = tmp_path / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    results = [
        json.loads(subprocess.run([sys.executable, "-c", SCRIPT, str(p), SECRET.hex()],
                                  check=True, capture_output=True, text=True).stdout)
        for p in paths
    ]
    first, second = results
    for key in ("id", "name", "shift", "frame"):
        assert first[key] == second[key], key
    assert second["refs"] == [first["sop"]]
