"""1,000 byte-mutated copies of valid files (CT, MR, SR, multi-frame, deflated,
implicit VR), seeded: none raises anything but the relay's own refusal, and
each is either de-identified with none of its planted values left and its
pixel data whole, or refused (by the engine, its leak check or the guard)
with a reason that quotes nothing of the file.

The steps are the deid service's for one image: read the header, apply the
profile, write the output with the source's pixels, read it back for the
leak check, then the independent guard on the original and the output.
"""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

from relay_shared.deid import DeidConfig, deidentify, find_leaks
from relay_shared.deid.streamcopy import load_header, write_deidentified
from relay_shared.dicom.vocabulary import KNOWN_VRS
from relay_shared.guard import SeriesGuard
from relay_shared.reasons import RelayError
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance

from .planting import PSEUDO

COPIES = 1000
SEED = 20261205
PATIENT = Patient("MUT4711X", "Mutantname^Quirina", birth_date="19400229",
                  accession="ACCMUT998877", institution="Mutation Memorial Clinic",
                  physician="Flipdoc^Bartholomew")
CONFIG = DeidConfig(options=frozenset({"rtnLongModifDatesOpt"}))
VR_NAMES = sorted(vr.encode() for vr in KNOWN_VRS)


def _ct(spec: SeriesSpec) -> Dataset:
    return make_instance(spec, 1)


def _mr(spec: SeriesSpec) -> Dataset:
    ds = make_instance(spec, 1)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.Modality, ds.MagneticFieldStrength = "MR", 3.0
    return ds


def _sr(spec: SeriesSpec) -> Dataset:
    ds = make_instance(spec, 0)
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.Modality, ds.ValueType = "SR", "CONTAINER"
    text, person = Dataset(), Dataset()
    text.ValueType, text.TextValue = "TEXT", f"{PATIENT.patient_id} seen by Flipdoc"
    person.ValueType, person.PersonName = "PNAME", PATIENT.name
    ds.ContentSequence = Sequence([text, person])
    return ds


def _multiframe(spec: SeriesSpec) -> Dataset:
    ds = make_instance(spec, 1)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    ds.NumberOfFrames = 3
    frames = []
    for n in range(3):
        position, group = Dataset(), Dataset()
        position.ImagePositionPatient = [0, 0, float(n)]
        group.PlanePositionSequence = Sequence([position])
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    pixels = np.random.default_rng(3).integers(0, 4000, (3, spec.rows, spec.columns))
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def _deflated(spec: SeriesSpec) -> Dataset:
    ds = make_instance(spec, 2)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return ds


def _implicit(spec: SeriesSpec) -> Dataset:
    ds = make_instance(spec, 3)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


KINDS: dict[str, Callable[[SeriesSpec], Dataset]] = {
    "CT": _ct, "MR": _mr, "SR": _sr, "multi-frame": _multiframe, "deflated": _deflated,
    "implicit": _implicit}


def originals(tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    spec = SeriesSpec(PATIENT, instances=4, rows=8, columns=8)
    files = {}
    for kind, make in KINDS.items():
        path = tmp_path / f"{kind}.dcm"
        make(spec).save_as(path, enforce_file_format=True)
        files[kind] = path.read_bytes()
    planted = [PATIENT.patient_id, PATIENT.accession, "Mutantname", "Quirina", "Flipdoc",
               "Bartholomew", "Mutation Memorial", PATIENT.birth_date, *spec.original_uids()]
    return files, planted


def mutated(data: bytes, rng: random.Random) -> bytes:
    """One to four changes where a parser can be misled: a byte of the
    header, a VR, a length, a cut, bytes inserted or left out."""
    out = bytearray(data)
    header_end = min(len(out), data.find(b"\xe0\x7f\x10\x00") + 16 if b"\xe0\x7f\x10\x00"
                     in data else len(out))
    data_set = data.find(b"\x08\x00", 144)  # past the file meta, most of the time
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        low = 128 if rng.random() < 0.15 else data_set
        if header_end <= low:
            break
        at = rng.randrange(low, header_end)
        kind = rng.choice(("byte", "byte", "byte", "byte", "vr", "vr", "vr", "length", "cut",
                           "insert", "drop"))
        if kind == "byte":
            out[at] = rng.randrange(256)
        elif kind == "vr":
            found = [m.start() for m in re.finditer(rb"[A-Z]{2}", bytes(out[132:header_end]))]
            if found:
                spot = 132 + rng.choice(found)
                out[spot:spot + 2] = rng.choice(VR_NAMES)
        elif kind == "length":
            out[at:at + 2] = rng.randrange(65536).to_bytes(2, "little")
        elif kind == "cut":
            del out[at:]
            header_end = min(header_end, len(out))
        elif kind == "insert":
            out[at:at] = rng.randbytes(rng.randint(1, 12))
        else:
            del out[at:at + rng.randint(1, 12)]
    return bytes(out)


def pipeline(source: Path, target: Path) -> str | None:
    """What the deid service does to one image: None when de-identified and
    cleared, else the reason it fails."""
    ids = PSEUDO.identifiers_for(PATIENT.patient_id)
    try:
        header = load_header(source)
        result = deidentify(header, ids, PSEUDO, CONFIG)
        write_deidentified(source, target, result.dataset)
        output = load_header(target)
    except RelayError as exc:
        return exc.reason
    if find_leaks(output, result.originals, date_shift_days=ids.date_shift_days,
                  config=CONFIG):
        return "leak check"
    guard = SeriesGuard(CONFIG.options, ids.date_shift_days)
    try:
        guard.add_original(source)
    except RelayError as exc:  # an original the guard cannot read: not cleared
        return exc.args[0]
    except ValueError as exc:
        return exc.args[0]
    findings = guard.check(target)
    return "guard" if findings else None


def source_pixels(path: Path) -> bytes | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dcmread(path, force=True).get("PixelData")
        except Exception:
            return None


def test_mutated_copies_are_deidentified_or_refused_never_leaked(tmp_path: Path) -> None:
    files, planted = originals(tmp_path)
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {}
    problems: list[str] = []
    for n in range(COPIES):
        kind = list(KINDS)[n % len(KINDS)]
        source, target = tmp_path / f"in-{n}.dcm", tmp_path / f"out-{n}.dcm"
        source.write_bytes(mutated(files[kind], rng))
        try:
            reason = pipeline(source, target)
        except Exception as exc:  # anything but the relay's own refusal is a defect
            problems.append(f"copy {n} ({kind}): {type(exc).__name__} {exc}"[:300])
            continue
        outcomes[reason or "de-identified"] = outcomes.get(reason or "de-identified", 0) + 1
        if reason is not None:
            if any(p.lower() in reason.lower() for p in planted):
                problems.append(f"copy {n} ({kind}): its reason quotes a planted value")
            continue
        data = target.read_bytes()
        left = [p for p in planted if p.encode().lower() in data.lower()]
        if left:
            problems.append(f"copy {n} ({kind}): {left} left")
        pixels = source_pixels(source)
        if pixels and pixels != source_pixels(target):
            problems.append(f"copy {n} ({kind}): its pixel data was not copied whole")
        source.unlink()
        target.unlink()
    print(outcomes)
    assert not problems, "\n".join(problems)
    # The mutations must not be so heavy that everything is refused.
    assert outcomes.get("de-identified", 0) >= COPIES // 4, outcomes
