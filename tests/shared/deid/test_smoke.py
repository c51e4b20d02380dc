"""The interface end to end on pydicom's bundled files."""

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from relay_shared.deid import (
    DeidConfig,
    Pseudonymizer,
    deidentify,
    find_leaks,
    identifying_values,
)
from relay_shared.deid.streamcopy import load_header, write_deidentified

SECRET = b"test-secret-0123456789"

FILES = ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
         "MR_small_implicit.dcm", "image_dfl.dcm", "JPEG2000.dcm"]


def read_with_pydicom(path: Path):
    return dcmread(path, stop_before_pixels=True)


@pytest.mark.parametrize("reader", [load_header, read_with_pydicom],
                         ids=["load_header", "dcmread"])
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("options", [frozenset(), frozenset({"rtnLongModifDatesOpt"})])
def test_bundled_file_round_trip(tmp_path: Path, name: str, options: frozenset[str],
                                 reader) -> None:
    src = Path(get_testdata_file(name))
    config = DeidConfig(options=options)
    pseudo = Pseudonymizer(SECRET)
    ds = reader(src)
    originals = identifying_values(ds, config)
    ids = pseudo.identifiers_for(str(ds.get("PatientID", "")), str(ds.get("PatientName", "")))
    result = deidentify(ds, ids, pseudo, config)
    dst = tmp_path / "out.dcm"
    write_deidentified(src, dst, result.dataset)
    out = dcmread(dst)
    assert out.PixelData == dcmread(src).PixelData
    assert out.PatientName == ids.patient_name
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert find_leaks(out, originals) == []
    assert find_leaks(load_header(dst), originals) == []
    assert find_leaks(load_header(dst), result.originals) == []
    assert not (tmp_path / "out.dcm.part").exists()
