"""De-identification throughput, on one core, against the same files:

  (a) pydicom read + write, the floor any pydicom-based tool pays;
  (b) the relay, per instance as the deid service does it: load_header,
      deidentify (with the originals of the instances before), write_deidentified
      (pixels copied as bytes);
  (b+) (b), then the leak guard of the profile's own originals, every output
      read back from disk (load_header) and searched (find_leaks) for every
      original of the series;
  (b++) the whole deid stage as the service runs it: (b+), then the
      independent guard (relay_shared.guard) reads every original and every
      output itself and runs its detectors;
  (c) GDCM's gdcmanon (PS3.15 basic profile, -e with a throw-away certificate),
      when installed (Debian package libgdcm-tools).

Usage: python bench/deid_bench.py [N] [--cpu 0] [--rounds 3] [--keep DIR]
Prints instances/s, the ratio to (a) and to gdcmanon, and how many of the
planted identifying values are still found in each tool's output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from relay_shared.deid import DeidConfig, IdentifyingValues, Pseudonymizer, deidentify, find_leaks
from relay_shared.deid.streamcopy import load_header, write_deidentified
from relay_shared.guard import SeriesGuard, patterns_in
from relay_shared.guard.rules import default_rules
from relay_shared.guard.walk import read_elements

STUDY_UID = "1.2.826.0.1.3680043.8.498.11112222333344445555"
SERIES_UID = "1.2.826.0.1.3680043.8.498.11112222333344445556"
FRAME_UID = "1.2.826.0.1.3680043.8.498.11112222333344445557"
PRIOR_UID = "1.2.826.0.1.3680043.8.498.11112222333344445558"

# Every value a reader must never find again, and where it is planted.
PLANTED = {
    "DOE^JOHN": "PatientName; private (0009,1001); nested 3 deep; free text",
    "MRN12345": "PatientID; private (0009,1002); free text",
    "OTHERID777": "OtherPatientIDs",
    "ACC998877": "AccessionNumber",
    "STUDY4242": "StudyID",
    "RP5566": "RequestAttributesSequence > RequestedProcedureID",
    "SPS7788": "RequestAttributesSequence > ScheduledProcedureStepID",
    "19700315": "PatientBirthDate",
    "20240105": "StudyDate, SeriesDate, AcquisitionDate, ContentDate",
    "SMITH^ANNA": "ReferringPhysicianName",
    "MILLER^TOM": "OperatorsName",
    "PEREZ^LUIS": "RequestAttributesSequence > RequestingPhysician",
    "WATSON^EMMA": "nested 3 deep > PersonName",
    "SAINT ELSEWHERE HOSPITAL": "InstitutionName",
    "12 HOSPITAL ROAD": "InstitutionAddress",
    "CARDIOLOGY WARD 7": "InstitutionalDepartmentName",
    "CTSCAN-ROOM3": "StationName",
    "SN-445566": "DeviceSerialNumber",
    "42 ELM STREET": "PatientAddress",
    "555-0199": "PatientTelephoneNumbers",
    "HOSPITAL_PACS": "file meta SourceApplicationEntityTitle",
    "BADGE-31337": "private (0009,1003) only",
    STUDY_UID: "StudyInstanceUID; ReferencedStudySequence",
    SERIES_UID: "SeriesInstanceUID",
    FRAME_UID: "FrameOfReferenceUID",
    PRIOR_UID: "ReferencedImageSequence > ReferencedSOPInstanceUID",
}


def template() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, "20240105")
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "ACC998877"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME MEDICAL"
    ds.InstitutionName = "SAINT ELSEWHERE HOSPITAL"
    ds.InstitutionAddress = "12 HOSPITAL ROAD"
    ds.ReferringPhysicianName = "SMITH^ANNA"
    ds.StationName = "CTSCAN-ROOM3"
    ds.StudyDescription = "CT HEAD for DOE^JOHN"
    ds.SeriesDescription = "AXIAL 5MM"
    ds.InstitutionalDepartmentName = "CARDIOLOGY WARD 7"
    ds.OperatorsName = "MILLER^TOM"
    ds.ManufacturerModelName = "SCANNER 9000"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = STUDY_UID
    ds.ReferencedStudySequence = Sequence([ref])
    img = Dataset()
    img.ReferencedSOPClassUID = CTImageStorage
    img.ReferencedSOPInstanceUID = PRIOR_UID
    ds.ReferencedImageSequence = Sequence([img])
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "MRN12345"
    ds.PatientBirthDate = "19700315"
    ds.PatientSex = "M"
    ds.OtherPatientIDs = "OTHERID777"
    ds.PatientAge = "054Y"
    ds.PatientAddress = "42 ELM STREET"
    ds.PatientTelephoneNumbers = "555-0199"
    ds.AdditionalPatientHistory = "Seen for MRN12345 by SMITH^ANNA"
    ds.SliceThickness = "5.0"
    ds.KVP = "120"
    ds.DeviceSerialNumber = "SN-445566"
    ds.SoftwareVersions = "1.0"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.StudyID = "STUDY4242"
    ds.SeriesNumber = 1
    ds.FrameOfReferenceUID = FRAME_UID
    ds.ImageComments = "Follow-up of DOE^JOHN, MRN12345"
    _private(ds)
    _nested(ds)
    _image(ds)
    return ds


def _private(ds: Dataset) -> None:
    block = ds.private_block(0x0009, "ACME RESEARCH 1.0", create=True)
    block.add_new(0x01, "LO", "DOE^JOHN")
    block.add_new(0x02, "LO", "MRN12345")
    block.add_new(0x03, "LO", "BADGE-31337")


def _nested(ds: Dataset) -> None:
    deepest = Dataset()
    deepest.ValueType = "PNAME"
    deepest.PersonName = "WATSON^EMMA"
    deepest.TextValue = "Consent signed by DOE^JOHN"
    protocol = Dataset()
    protocol.CodeValue = "P1"
    protocol.CodingSchemeDesignator = "99ACME"
    protocol.CodeMeaning = "Head routine"
    protocol.ProtocolContextSequence = Sequence([deepest])
    request = Dataset()
    request.RequestedProcedureID = "RP5566"
    request.ScheduledProcedureStepID = "SPS7788"
    request.RequestingPhysician = "PEREZ^LUIS"
    request.RequestedProcedureDescription = "CT HEAD DOE^JOHN"
    request.ScheduledProtocolCodeSequence = Sequence([protocol])
    ds.RequestAttributesSequence = Sequence([request])


def _image(ds: Dataset) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 512
    ds.PixelSpacing = [0.5, 0.5]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = (np.arange(512 * 512, dtype=np.uint32) % 4096).astype("<u2").tobytes()


def generate(directory: Path, count: int) -> list[Path]:
    ds = template()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    paths = []
    for i in range(count):
        uid = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = i + 1
        path = directory / f"ct{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def run_pydicom(paths: list[Path], out: Path) -> None:
    for path in paths:
        dcmread(path).save_as(out / path.name)


def relay_runner(guard: bool, independent: bool = False) -> Callable[[list[Path], Path], None]:
    """The calls services/deid/handlers.py makes, in its order."""
    pseudo = Pseudonymizer(b"benchmark-secret-0123456789", key_id="bench")
    config = DeidConfig()

    def run(paths: list[Path], out: Path) -> None:
        ids = None
        originals = IdentifyingValues()
        kept = []  # the service keeps each instance's audit and originals until the end
        for path in paths:
            header = load_header(path)
            if ids is None:
                ids = pseudo.identifiers_for(str(header.get("PatientID", "")).strip(),
                                             str(header.get("PatientName", "")))
            result = deidentify(header, ids, pseudo, config, known=originals)
            write_deidentified(path, out / path.name, result.dataset)
            originals.update(result.originals)
            kept.append((result.audit, result.originals))
        if guard:
            for path in paths:
                if find_leaks(load_header(out / path.name), originals):
                    raise SystemExit(f"leak in {path.name}")
        if independent:
            assert ids is not None
            check_independently(paths, out, config.options, ids.date_shift_days)

    return run


def check_independently(paths: list[Path], out: Path, options: frozenset[str], shift: int,
                        guard: SeriesGuard | None = None) -> None:
    """As services/deid/guarding.py: every original, then every output."""
    guard = guard or SeriesGuard(options, shift)
    for path in paths:
        guard.add_original(path)
    for path in paths:
        if guard.check(out / path.name):
            raise SystemExit(f"the guard fails {path.name}")


def guard_costs(paths: list[Path], out: Path) -> dict[str, float]:
    """Milliseconds per instance of the independent guard's parts, on outputs
    already written: reading the originals, checking the outputs (each
    distinct value judged once per series), and the detectors alone run on
    every free-text value of every output, as if no value repeated."""
    rules = default_rules()
    guard = SeriesGuard(rules=rules)
    start = time.perf_counter()
    for path in paths:
        guard.add_original(path)
    middle = time.perf_counter()
    for path in paths:
        guard.check(out / path.name)
    end = time.perf_counter()
    texts = [[text for element in read_elements(out / path.name)
              if element.vr in rules.text_vrs for text in element.texts()] for path in paths]
    detecting = time.perf_counter()
    for output in texts:
        for text in output:
            patterns_in(text, rules)
    detected = time.perf_counter()
    return {"originals read": (middle - start) / len(paths) * 1000,
            "outputs checked": (end - middle) / len(paths) * 1000,
            "detectors, uncached": (detected - detecting) / len(paths) * 1000}


def gdcmanon_runner(workdir: Path) -> Callable[[list[Path], Path], None] | None:
    exe = shutil.which("gdcmanon")
    if exe is None:
        return None
    certificate = workdir / "cert.pem"
    made = shutil.which("openssl") and subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=bench", "-keyout", str(workdir / "key.pem"), "-out", str(certificate)],
        capture_output=True).returncode == 0
    mode = ["-e", "-c", str(certificate)] if made else ["--dumb", "--empty", "10,10"]

    def run(paths: list[Path], out: Path) -> None:
        subprocess.run([exe, *mode, "--continue", "-i", str(paths[0].parent), "-o", str(out)],
                       check=True, capture_output=True)

    return run


def timed(run: Callable[[list[Path], Path], None], paths: list[Path], out: Path) -> float:
    out.mkdir()
    start = time.perf_counter()
    run(paths, out)
    return len(paths) / (time.perf_counter() - start)


def values_left(directory: Path) -> set[str]:
    """Planted values found in any header of the output, at any depth,
    file meta and private elements included (pixel data skipped)."""
    found: set[str] = set()
    for path in sorted(directory.glob("*.dcm")):
        texts = []
        ds = dcmread(path, stop_before_pixels=True)
        _texts(ds.file_meta, texts)
        _texts(ds, texts)
        blob = "\n".join(texts).upper()
        found |= {value for value in PLANTED if value in blob}
    return found


def _texts(ds: Dataset, out: list[str]) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _texts(item, out)
        elif isinstance(elem.value, bytes):
            if len(elem.value) <= 4096:
                out.append(elem.value.decode("latin-1"))
        else:
            out.append(str(elem.value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=300)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin every run to")
    parser.add_argument("--keep", type=Path, help="keep the generated files and outputs here")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per tool")
    parser.add_argument("--memory", action="store_true",
                        help="also run (b++) once, untimed, under tracemalloc: peak Python memory")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})  # gdcmanon inherits it
    work = Path(tempfile.mkdtemp(prefix="deid-bench-", dir=args.keep))
    try:
        report(work, args.count, args.rounds, args.memory)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def report(work: Path, count: int, rounds: int, memory: bool = False) -> None:
    source = work / "source"
    source.mkdir()
    paths = generate(source, count)
    print(f"{count} synthetic CT instances, 512x512 16-bit, {len(PLANTED)} planted values, "
          f"one core, python {sys.version.split()[0]}, median of {rounds} round(s)")
    runners = {"(a) pydicom read+write": run_pydicom,
               "(b) relay deid + stream copy": relay_runner(guard=False),
               "(b+) relay, + leak guard read-back": relay_runner(guard=True),
               "(b++) relay, + independent guard": relay_runner(guard=True, independent=True)}
    gdcm = gdcmanon_runner(work)
    if gdcm is not None:
        runners["(c) gdcmanon -e"] = gdcm
    relay_runner(guard=True, independent=True)(paths[:10], _fresh(work / "warmup"))
    rates = measure(runners, paths, work, rounds)
    leftover = {name: values_left(work / f"out{i}") for i, name in enumerate(runners)}
    base = rates["(a) pydicom read+write"]
    print(f"{'tool':36} {'inst/s':>8} {'vs (a)':>7} {'vs gdcm':>8} {'left':>5}")
    for name, rate in rates.items():
        vs_gdcm = f"{rate / rates['(c) gdcmanon -e']:.2f}x" if gdcm else "n/a"
        left = "-" if name.startswith("(a)") else str(len(leftover[name]))
        print(f"{name:36} {rate:8.0f} {rate / base:6.2f}x {vs_gdcm:>8} {left:>5}")
    if gdcm is None:
        print("gdcmanon not found (apt-get install libgdcm-tools): row (c) skipped")
    for name, left in leftover.items():
        if left and not name.startswith("(a)"):
            print(f"{name} left: {', '.join(sorted(PLANTED[v] for v in left))}")
    relay_out = work / f"out{list(runners).index('(b++) relay, + independent guard')}"
    costs = guard_costs(paths, relay_out)
    print("independent guard, ms per instance: " + ", ".join(
        f"{name} {value:.3f}" for name, value in costs.items()))
    if memory:
        peak = peak_memory(relay_runner(guard=True, independent=True), paths, work / "memory")
        print(f"(b++) peak Python memory over the {count}-instance series: {peak / 2**20:.1f} MB "
              f"(tracemalloc; pixel data is copied by the kernel, never held)")


def measure(runners: dict[str, Callable[[list[Path], Path], None]], paths: list[Path],
            work: Path, rounds: int) -> dict[str, float]:
    """Rounds interleave the tools, so page cache and disk write-back weigh
    on each alike; the median of each tool's rounds is reported. The outputs
    of the last round are kept for counting what is left."""
    seen: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for i, (name, run) in enumerate(runners.items()):
            out = work / f"out{i}"
            shutil.rmtree(out, ignore_errors=True)
            seen[name].append(timed(run, paths, out))
    return {name: statistics.median(rates) for name, rates in seen.items()}


def peak_memory(run: Callable[[list[Path], Path], None], paths: list[Path], out: Path) -> int:
    out.mkdir()
    tracemalloc.start()
    try:
        run(paths, out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _fresh(path: Path) -> Path:
    path.mkdir()
    return path


if __name__ == "__main__":
    main()
