"""Burned-in text throughput, for 512x512 RGB ultrasound frames with a name and
an ID drawn in their top band, against header-only de-identification in the
same run:

  (a) header only: load_header, deidentify, write_deidentified (pixels copied
      as bytes) - the path of every image nothing flags;
  (b) + redaction: the image flagged, a region rule blacks out the band, the
      changed pixels written under a new SOPInstanceUID; OCR off;
  (c) + redaction + OCR: (b), then the text gate (Tesseract) on the result;
  (d) OCR only: no rule for the device, the gate reads the untouched frame
      (and holds it).

Usage: python bench/pixel_bench.py [N] [--rounds 1]
It is a benchmark, not a test; compare rows of one run only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay_shared.deid import DeidConfig, Pseudonymizer, deidentify
from relay_shared.deid.streamcopy import load_header, write_deidentified
from relay_shared.pixels import PixelPolicy, load_rules
from tests.shared.pixels.drawing import UsSpec, us_image

PSEUDO = Pseudonymizer(b"pixel-benchmark-secret-0123456")
CONFIG = DeidConfig.from_settings(["rtnLongModifDatesOpt"], None)
RULES = """version: bench
regions:
  - name: bench-banner
    when: {ManufacturerModelName: SonoTest 1}
    boxes: [[0, 0, 512, 64]]
    covers_text: true
"""


def make_inputs(folder: Path, count: int) -> list[Path]:
    texts = {(8, 8): "CURIE MARIE", (8, 36): "MRN-4711"}
    paths = []
    for index in range(count):
        ds = us_image(UsSpec(rows=512, cols=512, rgb=True, texts=texts))
        ds.InstanceNumber = index + 1
        path = folder / f"in{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def header_only(source: Path, target: Path) -> None:
    header = load_header(source)
    result = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, CONFIG)
    write_deidentified(source, target, result.dataset)


def with_pixels(policy: PixelPolicy) -> Callable[[Path, Path], None]:
    def run(source: Path, target: Path) -> None:
        header = load_header(source)
        assessment = policy.assess(header)
        result = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, CONFIG)
        policy.process(assessment, source, target, result.dataset, result.originals, PSEUDO)
    return run


def rate(step: Callable[[Path, Path], None], inputs: list[Path], out: Path) -> float:
    out.mkdir(exist_ok=True)
    start = time.perf_counter()
    for source in inputs:
        step(source, out / source.name)
    return len(inputs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        rules_file = root / "rules.yaml"
        rules_file.write_text(RULES)
        ruled, bare = load_rules(rules_file), load_rules()
        inputs = make_inputs(root / "in", args.count)
        steps = {
            "(a) header only": header_only,
            "(b) + redaction, OCR off": with_pixels(PixelPolicy(ruled, ocr=False)),
            "(c) + redaction + OCR": with_pixels(PixelPolicy(ruled)),
            "(d) OCR only, no rule (held)": with_pixels(PixelPolicy(bare)),
        }
        results: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):  # interleaved, so the machine's load weighs on each alike
            for name, step in steps.items():
                results[name].append(rate(step, inputs, root / name[:3].strip("()")))
    base = statistics.median(results["(a) header only"])
    print(f"{args.count} images of 512x512 RGB, {args.rounds} round(s), median images/s")
    print("| | images/s | vs (a) |\n| --- | --- | --- |")
    for name, rates in results.items():
        value = statistics.median(rates)
        print(f"| {name} | {value:.1f} | {value / base:.3f}x |")


if __name__ == "__main__":
    main()
