"""A profile tried on files, and two recipes compared on them: nothing stored or sent.

Files are grouped by series as the relay would take them: one patient's pseudonyms
and date shift per series, free text scrubbed of the values met in every instance
of it, then the guard (`relay_shared.guard`) on each output, against the series'
originals. The outputs are written into a scratch folder the caller owns and
removes. Pixel data is not looked at: burned-in text is not previewed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relay_shared.deid import DeidConfig, IdentifyingValues, Pseudonymizer
from relay_shared.deid.explain import AttributeResult, explain
from relay_shared.deid.streamcopy import load_header, write_deidentified
from relay_shared.guard import Rules, SeriesGuard, Unreadable
from relay_shared.reasons import keep_text, reason_of


@dataclass
class FilePreview:
    name: str  # as the caller named it: a path, an upload's file name
    attributes: list[AttributeResult] = field(default_factory=list)
    guard: list[str] = field(default_factory=list)  # findings: place and rule, never a value
    error: str | None = None  # the file could not be previewed, and why

    @property
    def passes_guard(self) -> bool:
        return self.error is None and not self.guard


@dataclass(frozen=True)
class Profile:
    """What a project de-identifies with."""

    config: DeidConfig
    pseudonymizer: Pseudonymizer
    guard_rules: Rules | None = None


def preview(files: Sequence[tuple[str, Path]], profile: Profile, scratch: Path, *,
            values: bool = False) -> list[FilePreview]:
    """Each file's attributes under the profile and the guard's findings, in the order
    given. `values`: the values before and after (for people allowed to see them)."""
    results = [FilePreview(name) for name, _ in files]
    series: dict[str, list[tuple[FilePreview, Path]]] = {}
    for result, (_, path) in zip(results, files, strict=True):
        try:
            key = load_header(path).get("SeriesInstanceUID")
        except Exception as exc:  # not DICOM, cut short: said per file, the rest go on
            keep_text(exc, "preview")
            result.error = f"not a DICOM file this relay can read ({reason_of(exc)})"
            continue
        series.setdefault(key, []).append((result, path))
    for index, members in enumerate(series.values()):
        _one_series(members, profile, scratch / f"series-{index}", values)
    return results


def _one_series(members: list[tuple[FilePreview, Path]], profile: Profile, scratch: Path,
                values: bool) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    known = IdentifyingValues()
    ids = None
    outputs: list[tuple[FilePreview, Path, Path]] = []
    for number, (preview_of, path) in enumerate(members):
        header = load_header(path)
        if ids is None:
            ids = profile.pseudonymizer.identifiers_for(header.get("PatientID").strip(),
                                                        header.get("PatientName"))
        try:
            result, attributes = explain(header, ids, profile.pseudonymizer, profile.config,
                                         known=known, values=values)
            output = scratch / f"{number}.dcm"
            write_deidentified(path, output, result.dataset)
        except Exception as exc:
            keep_text(exc, "preview")
            preview_of.error = f"de-identification failed ({reason_of(exc)})"
            continue
        known.update(result.originals)
        preview_of.attributes = attributes
        outputs.append((preview_of, path, output))
    if ids is not None:
        _guard(outputs, profile, ids.date_shift_days)


def _guard(outputs: list[tuple[FilePreview, Path, Path]], profile: Profile,
           shift: int | None) -> None:
    guard = SeriesGuard(profile.config.options, shift, profile.guard_rules)
    unreadable = set()
    for number, (_, original, _) in enumerate(outputs):
        try:
            guard.add_original(original)
        except (Unreadable, OSError):
            unreadable.add(number)
    for number, (preview_of, _, output) in enumerate(outputs):
        if number in unreadable:
            preview_of.guard.append("the guard cannot read the original")
        else:
            preview_of.guard.extend(str(finding) for finding in guard.check(output))


@dataclass(frozen=True)
class Change:
    """One attribute the two profiles treat differently, in one file."""

    path: str
    keyword: str
    first: AttributeResult | None  # None: the attribute is not there at all
    second: AttributeResult | None


@dataclass
class FileDiff:
    name: str
    changes: list[Change] = field(default_factory=list)
    guard_first: list[str] = field(default_factory=list)
    guard_second: list[str] = field(default_factory=list)
    error: str | None = None


def compare(files: Sequence[tuple[str, Path]], first: Profile, second: Profile,
            scratch: Path) -> list[FileDiff]:
    """Per file, the attributes whose action, outcome or resulting value differs."""
    a = preview(files, first, scratch / "first", values=True)
    b = preview(files, second, scratch / "second", values=True)
    return [_file_diff(x, y) for x, y in zip(a, b, strict=True)]


def _file_diff(a: FilePreview, b: FilePreview) -> FileDiff:
    diff = FileDiff(a.name, guard_first=a.guard, guard_second=b.guard, error=a.error or b.error)
    by_path_a = {r.path: r for r in a.attributes}
    by_path_b = {r.path: r for r in b.attributes}
    for path in sorted(by_path_a.keys() | by_path_b.keys()):
        x, y = by_path_a.get(path), by_path_b.get(path)
        if x is None or y is None or (x.action, x.code, x.outcome, x.after) != (
                y.action, y.code, y.outcome, y.after):
            diff.changes.append(Change(path, (x or y).keyword, x, y))  # type: ignore[union-attr]
    return diff
