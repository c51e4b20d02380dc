"""A transfer syntax per destination: what may be sent, and lossless transcoding to it.

A destination's ``transfer_syntax`` list names, in order of preference, the encodings
it takes. An instance whose own encoding is on the list goes as it is, byte for byte.
Any other is transcoded, without loss, to the first syntax on the list that the relay
can write losslessly (explicit or implicit VR little endian, deflated, RLE, JPEG 2000
lossless, JPEG-LS lossless) and that fits the image; the copy is decoded back nowhere
but in the tests, where its pixels must equal the original's.

Lossy transcoding never happens implicitly: a lossy source (JPEG baseline, JPEG 2000
and HTJ2K that may be lossy, JPEG-LS near-lossless, video) goes only where its own
syntax is allowed, else the image fails with the reason; a lossy syntax on the list is
never chosen as the target for another source.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom import uid as uids
from pydicom._uid_dict import UID_dictionary

from relay_sender.destinations import (
    Destination,
    DestinationError,
    OutgoingInstance,
    OutgoingSeries,
)
from relay_sender.dicom_ae import DicomDestination, read_file_meta
from relay_sender.handlers import NotHeld
from relay_shared.reasons import keep_text

log = logging.getLogger(__name__)

UNCOMPRESSED = (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian,
                uids.DeflatedExplicitVRLittleEndian, uids.ExplicitVRBigEndian)
# Encodings that keep every pixel value; any other syntax is taken as lossy.
LOSSLESS = frozenset({*UNCOMPRESSED, uids.RLELossless, uids.JPEGLossless, uids.JPEGLosslessSV1,
                      uids.JPEGLSLossless, uids.JPEG2000Lossless, uids.HTJ2KLossless,
                      uids.HTJ2KLosslessRPCL})
# What the relay writes, with the encoder plugin (None: no pixel encoding, a re-encode).
WRITERS: dict[str, str | None] = {
    uids.ExplicitVRLittleEndian: None, uids.ImplicitVRLittleEndian: None,
    uids.DeflatedExplicitVRLittleEndian: None, uids.RLELossless: "pydicom",
    uids.JPEG2000Lossless: "pylibjpeg", uids.JPEGLSLossless: "pyjpegls"}
PIXEL_DATA = 0x7FE00010


def known_syntax(syntax: str) -> str | None:
    """The standard's name of a transfer syntax, or None. Looked up, not parsed: a
    file could carry any text there, and pydicom's parser would log it."""
    entry = UID_dictionary.get(syntax)
    return entry[0] if entry is not None and entry[1] == "Transfer Syntax" else None


def syntax_name(syntax: str) -> str:
    """A transfer syntax as a reason may show it: a file's own value only when it is one
    the standard defines."""
    name = known_syntax(syntax)
    return f"{name} ({syntax})" if name else "a transfer syntax the relay does not know"


class SyntaxRefused(DestinationError):
    """An instance that cannot go to a destination in any syntax it allows."""

    code = "transfer_syntax"


@dataclass(frozen=True)
class SyntaxPolicy:
    allowed: tuple[str, ...]

    def targets(self, source: str) -> list[str]:
        """Where an instance encoded in ``source`` may go, best first: [] means as it is."""
        if source in self.allowed:
            return []
        if source not in LOSSLESS:
            kind = "is lossy" if known_syntax(source) else \
                "is not known to be lossless"
            raise SyntaxRefused(
                f"its transfer syntax, {syntax_name(source)}, {kind} and the destination "
                f"allows only {self._listed()}; lossy transcoding is never done implicitly")
        targets = [s for s in self.allowed if s in WRITERS]
        if not targets:
            raise SyntaxRefused(f"the destination allows only {self._listed()}, none of which "
                                f"the relay writes losslessly from {syntax_name(source)}")
        return targets

    def _listed(self) -> str:
        return ", ".join(syntax_name(s) for s in self.allowed)


def transcode(source: Path, target: Path, syntax: str) -> None:
    """Write ``source`` encoded in ``syntax`` to ``target`` (whole, then renamed)."""
    ds = dcmread(source)
    # The same instance in another encoding keeps its SOP Instance UID (pydicom would
    # make a new one), and its pixel values as stored: no colour conversion on decoding.
    if PIXEL_DATA in ds and ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(as_rgb=False, generate_instance_uid=False)
    plugin = WRITERS[syntax]
    if plugin is not None and PIXEL_DATA in ds:
        ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
    else:
        ds.file_meta.TransferSyntaxUID = uids.UID(syntax)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    ds.save_as(partial, enforce_file_format=True)
    os.replace(partial, target)


def fit(instance: OutgoingInstance, policy: SyntaxPolicy, folder: Path) -> Path:
    """The file to send for ``instance``: its own, or a lossless copy in ``folder``."""
    source = read_file_meta(instance.path)[0x00020010]
    targets = policy.targets(source)
    if not targets:
        return instance.path
    copy = folder / f"{instance.image_id}.dcm"
    for syntax in targets:
        try:
            transcode(instance.path, copy, syntax)
            return copy
        except Exception as exc:  # this encoder does not take the image: the next may
            keep_text(exc, f"transcoding image {instance.image_id} to {syntax}")
            log.info("image not transcodable to a preferred syntax, trying the next",
                     extra={"image_id": instance.image_id, "syntax": syntax,
                            "error": type(exc).__name__})
    raise SyntaxRefused(f"none of {', '.join(targets)} could encode it losslessly from "
                        f"{syntax_name(source)}")


# Series whose fitted files a destination remembers between its send and its check.
REMEMBERED_SERIES = 64


class TranscodingDestination:
    """A destination given only what its transfer_syntax list allows. The copies are
    written beside the series' working files (removed with them once it is DONE); an
    image that cannot go is reported missing with its reason, so the handler records
    that image as FAILED at this destination and confirms the others."""

    def __init__(self, inner: Destination, allowed: Iterable[str]) -> None:
        self._inner = inner
        self._policy = SyntaxPolicy(tuple(allowed))
        self._fitted: OrderedDict[int, dict[str, Path | SyntaxRefused]] = OrderedDict()
        self._lock = threading.Lock()
        # A dicom destination proposes, for each SOP class, the syntaxes of the list, and
        # sends a file whose syntax the AE turned down in one it accepted.
        if isinstance(inner, DicomDestination):
            inner.preferred_syntaxes = list(self._policy.allowed)
            inner.refit = self._refit

    @property
    def inner(self) -> Destination:
        """The destination itself, for what its kind says (the manifest's proofs)."""
        return self._inner

    @property
    def name(self) -> str:
        return self._inner.name

    @name.setter
    def name(self, value: str) -> None:
        self._inner.name = value

    @property
    def sends_whole_series(self) -> bool:
        return self._inner.sends_whole_series

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)  # close(), and what else the kind offers

    def send(self, series: OutgoingSeries) -> None:
        fitted = self._fit(series)
        if fitted.instances:
            self._inner.send(fitted)

    def missing(self, series: OutgoingSeries) -> set[str]:
        fitted = self._fit(series)
        missing = self._inner.missing(fitted) if fitted.instances else set()
        refused = self._refused(series)
        if refused:
            raise NotHeld(_grouped(refused), missing | set(refused))
        return missing

    def sent_files(self, series: OutgoingSeries) -> dict[str, Path]:
        """Each instance's file as this destination is given it (the manifest hashes
        these): the series' own where its syntax is allowed, else the transcoded copy."""
        return {i.sop_instance_uid: i.path for i in self._fit(series).instances}

    def _fit(self, series: OutgoingSeries) -> OutgoingSeries:
        folder = series.instances[0].path.parent.parent / f"syntax-{self.name}" \
            if series.instances else Path()
        with self._lock:
            known = self._fitted.setdefault(series.series_id, {})
            self._fitted.move_to_end(series.series_id)
            while len(self._fitted) > REMEMBERED_SERIES:
                self._fitted.popitem(last=False)
        instances = []
        for instance in series.instances:
            found = known.get(instance.sop_instance_uid)
            if found is None:
                try:
                    found = fit(instance, self._policy, folder)
                except SyntaxRefused as exc:
                    found = SyntaxRefused(f"image {instance.image_id}: {exc.reason}")
                known[instance.sop_instance_uid] = found
            if isinstance(found, Path):
                instances.append(replace(instance, path=found))
        return replace(series, instances=instances)

    def _refit(self, instance: OutgoingInstance, accepted: list[str]) -> Path:
        """The instance in a listed syntax the AE accepted, in the list's order."""
        policy = SyntaxPolicy(tuple(s for s in self._policy.allowed if s in accepted))
        if not policy.allowed:
            raise SyntaxRefused(f"image {instance.image_id}: the AE accepted none of the "
                                f"listed transfer syntaxes for its SOP class")
        folder = instance.path.parent.parent / f"syntax-{self.name}-negotiated"
        try:
            return fit(instance, policy, folder)
        except SyntaxRefused as exc:
            raise SyntaxRefused(f"image {instance.image_id}: the AE accepted none of the "
                                f"listed syntaxes it can take: {exc.reason}") from None

    def _refused(self, series: OutgoingSeries) -> dict[str, str]:
        with self._lock:
            known = self._fitted.get(series.series_id, {})
        return {i.sop_instance_uid: found.reason for i in series.instances
                if isinstance(found := known.get(i.sop_instance_uid), SyntaxRefused)}


def _grouped(refused: dict[str, str]) -> str:
    reasons = sorted(set(refused.values()))
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3
                                      else "")
    return f"{len(refused)} image(s) not sent in an allowed transfer syntax: {shown}"
