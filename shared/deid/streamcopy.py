"""Read a header without its pixel data (`read_header`), and write a
de-identified header followed by the source's pixel data, copied as raw
bytes. The one module of the package that does I/O.

The pixel data is never decoded and never held whole: it is located in the
source by the header's parser (a `Header` knows its offset) or by walking
element headers (values are skipped, not read), then copied by the kernel
(copy_file_range) or in chunks. Deflated files are
inflated and deflated again as a stream.

Elements stored after the pixel data (private groups 7FE1 and up, digital
signatures FFFA, trailing padding FFFC) are never copied blindly:
- if `header` holds any (the caller read the whole file and de-identified
  them with the rest), those are written;
- else, if `trailing` is given, they are parsed and passed to it, and what
  it returns is written (give it a function that de-identifies);
- else they are dropped. The profile removes all of them anyway: private
  attributes by default, Digital Signatures Sequence (X), and padding is
  meaningless once the file changes.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .encode import encode_dataset, encode_file_meta
from .header import PREAMBLE, Header, Truncated, Unsupported, encode_item, encode_meta, parse_file

PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
FIRST_PIXEL_TAG = 0x7FE00008
LAST_PIXEL_TAG = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR",
                      b"UT", b"SV", b"UV"})
CHUNK = 1 << 20
HEAD_BYTES = 1 << 16  # a header is a few KB: read this much first, more if needed

Trailing = Callable[[Dataset], Dataset | None]


class StreamCopyError(ValueError):
    """The source cannot be copied: truncated, or not the encoding claimed."""


@lru_cache(maxsize=64)
def _encoding(transfer_syntax: str) -> _Encoding:
    return _Encoding(transfer_syntax)


class _Encoding:
    def __init__(self, transfer_syntax: str):
        uid = UID(transfer_syntax)
        self.implicit = uid == ImplicitVRLittleEndian
        self.little = uid != ExplicitVRBigEndian
        self.deflated = uid.is_deflated
        self.order = "<" if self.little else ">"


def read_header(path: Path) -> Header | Dataset:
    """The header of a Part 10 file, without its pixel data: a `Header`
    (read on the bytes, the fast path) or, for what that parser leaves to
    pydicom (see `header.py`), a Dataset. `deidentify`, `write_deidentified`
    and `find_leaks` take either."""
    with open(path, "rb") as fp:
        data = fp.read(HEAD_BYTES)
        while True:
            complete = len(data) < HEAD_BYTES or not fp.peek(1)
            try:
                return parse_file(data, complete)
            except Truncated:
                if complete:
                    break
                data += fp.read(len(data))  # a header this long is rare: read twice as much
            except Unsupported:
                break
    return dcmread(path, stop_before_pixels=True)


def write_deidentified(src_path: Path, dst_path: Path, header: Dataset | Header, *,
                       trailing: Trailing | None = None, fsync: bool = False) -> None:
    """Write `header` (with its file_meta) and the pixel data of `src_path`
    to `dst_path`, atomically: the file appears under its name complete or
    not at all. A `Header` must have been read from `src_path`: it knows
    where the pixel data starts."""
    dst_path = Path(dst_path)
    part = dst_path.with_name(dst_path.name + ".part")
    syntax = header.transfer_syntax if isinstance(header, Header) else \
        header.file_meta.TransferSyntaxUID
    enc = _encoding(syntax or ExplicitVRLittleEndian)
    if isinstance(header, Header) and enc.deflated:
        header = header.to_dataset()
    try:
        with open(src_path, "rb") as src, open(part, "wb") as out:
            if isinstance(header, Header):
                _write_header(src, out, header, enc, trailing)
            else:
                _check_source(src, header)
                _write(src, out, header, enc, trailing)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(part, dst_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _check_source(src: BinaryIO, header: Dataset) -> None:
    """Leave `src` at the start of the dataset, having checked the source is
    encoded as the header says (the copied bytes must match the header)."""
    src.seek(128)
    if src.read(4) != b"DICM":
        src.seek(0)
        return
    source_ts = None
    while True:  # the file meta group is always explicit VR little endian
        head = src.read(8)
        if len(head) < 8 or head[:2] != b"\x02\x00":
            src.seek(-len(head), os.SEEK_CUR)
            break
        element, vr = struct.unpack("<H", head[2:4])[0], head[4:6]
        length = struct.unpack("<L", src.read(4))[0] if vr in LONG_VRS else \
            struct.unpack("<H", head[6:8])[0]
        value = src.read(length)
        if element == 0x0010:
            source_ts = value.rstrip(b"\x00 ").decode("ascii", "replace")
    if source_ts is not None and source_ts != header.file_meta.TransferSyntaxUID:
        raise StreamCopyError("the header's transfer syntax differs from the source's")


def _write(src: BinaryIO, out: BinaryIO, header: Dataset, enc: _Encoding,
           trailing: Trailing | None) -> None:
    head, tail = _split(header)
    out.write(b"\x00" * 128 + b"DICM" + encode_file_meta(header.file_meta))
    sink: _DeflateSink | _FileSink
    reader: _InflateReader | _FileReader
    if enc.deflated:
        sink = _DeflateSink(out)
        sink.write(_encode(head, enc))
        reader = _InflateReader(src, sink)
    else:
        sink = _FileSink(out, src)
        sink.write(_encode(head, enc))
        reader = _FileReader(src)
    if _seek_pixels(reader, enc):
        while _peek_tag(reader, enc) in PIXEL_TAGS:
            _copy_element(reader, sink, enc)
        if tail is None and trailing is not None:
            tail = _trailing(reader, enc, trailing)
    if tail is not None and len(tail):
        sink.write(_encode(tail, enc, header.get("SpecificCharacterSet")))
    sink.close()


def _write_header(src: BinaryIO, out: BinaryIO, header: Header, enc: _Encoding,
                  trailing: Trailing | None) -> None:
    """Header bytes, then the pixel elements copied from where the header
    says they start; no walk through the source's header."""
    body = header.body
    tail = {t: e for t, e in body.items() if t > LAST_PIXEL_TAG}
    if tail:
        body = {t: e for t, e in body.items() if t <= LAST_PIXEL_TAG}
    meta = encode_meta(header.meta) if header.meta is not None else b""
    out.write(PREAMBLE + meta + encode_item(body, header.encoding))
    if header.pixel_offset is not None:
        src.seek(header.pixel_offset)
        reader, sink = _FileReader(src), _FileSink(out, src)
        if _peek_tag(reader, enc) not in PIXEL_TAGS:
            raise StreamCopyError("the header was not read from this source")
        while _peek_tag(reader, enc) in PIXEL_TAGS:
            _copy_element(reader, sink, enc)
        if not tail and trailing is not None:
            found = _trailing(reader, enc, trailing)
            if found is not None and len(found):
                charset = header.get("SpecificCharacterSet") or None
                out.write(encode_dataset(found, enc.implicit, enc.little, charset))
    if tail:
        out.write(encode_item(tail, header.encoding))
    out.flush()


def _split(header: Dataset) -> tuple[Dataset, Dataset | None]:
    tags = list(header.keys())
    if not tags or tags[-1] < FIRST_PIXEL_TAG:
        return header, None
    tail = header[LAST_PIXEL_TAG + 1:]
    return header[:FIRST_PIXEL_TAG], (tail if len(tail) else None)


def _encode(ds: Dataset, enc: _Encoding, charset: object = None) -> bytes:
    return encode_dataset(ds, enc.implicit, enc.little, charset)


def _trailing(reader, enc: _Encoding, trailing: Trailing) -> Dataset | None:
    raw = reader.read_rest()
    if not raw:
        return None
    found = read_dataset(BytesIO(raw), is_implicit_VR=enc.implicit, is_little_endian=enc.little)
    kept = trailing(found)
    return kept[LAST_PIXEL_TAG + 1:] if kept is not None else None


# -- walking element headers -------------------------------------------------

def _peek_tag(reader, enc: _Encoding) -> int | None:
    head = reader.read_or_eof(4)
    if len(head) < 4:
        return None
    reader.unread(head)
    group, element = struct.unpack(enc.order + "HH", head)
    return (group << 16) | element


def _seek_pixels(reader, enc: _Encoding) -> bool:
    """Skip top-level elements up to the first pixel element (or anything
    after it); False when the dataset has none."""
    while True:
        tag = _peek_tag(reader, enc)
        if tag is None:
            return False
        if tag >= FIRST_PIXEL_TAG:
            return True
        _skip_element(reader, enc, enc.implicit)


def _element_header(reader, enc: _Encoding, implicit: bool) -> tuple[bytes, int]:
    reader.skip(4)  # the tag: the caller peeked it already
    if implicit:
        return b"", struct.unpack(enc.order + "L", reader.read(4))[0]
    vr = reader.read(2)
    if vr in LONG_VRS:
        return vr, struct.unpack(enc.order + "2xL", reader.read(6))[0]
    return vr, struct.unpack(enc.order + "H", reader.read(2))[0]


def _skip_element(reader, enc: _Encoding, implicit: bool) -> None:
    vr, length = _element_header(reader, enc, implicit)
    if length == UNDEFINED:
        # PS3.5 6.2.2: an UN value of undefined length is implicit VR inside.
        _skip_items(reader, enc, implicit or vr == b"UN")
    else:
        reader.skip(length)


def _skip_items(reader, enc: _Encoding, implicit: bool) -> None:
    while True:
        tag, length = _item_header(reader, enc)
        if tag == SEQUENCE_END:
            return
        if tag != ITEM:
            raise StreamCopyError("expected an item in a sequence of undefined length")
        if length != UNDEFINED:
            reader.skip(length)
            continue
        while _peek_tag(reader, enc) != ITEM_END:
            _skip_element(reader, enc, implicit)
        _item_header(reader, enc)


def _item_header(reader, enc: _Encoding) -> tuple[int, int]:
    group, element, length = struct.unpack(enc.order + "HHL", reader.read(8))
    return (group << 16) | element, length


def _copy_element(reader, sink, enc: _Encoding) -> None:
    start = reader.tell()
    sink.tee(reader)
    _skip_element(reader, enc, enc.implicit)
    sink.untee(reader)
    sink.copy_range(start, reader.tell() - start)


# -- readers and sinks -------------------------------------------------------

class _FileReader:
    """Seekable source: skipping is a seek, copying is done by the sink."""

    def __init__(self, fp: BinaryIO):
        self.fp = fp

    def read(self, n: int) -> bytes:
        data = self.fp.read(n)
        if len(data) < n:
            raise StreamCopyError("the source file is truncated")
        return data

    def read_or_eof(self, n: int) -> bytes:
        return self.fp.read(n)

    def unread(self, data: bytes) -> None:
        self.fp.seek(-len(data), os.SEEK_CUR)

    def skip(self, n: int) -> None:
        self.fp.seek(n, os.SEEK_CUR)

    def tell(self) -> int:
        return self.fp.tell()

    def read_rest(self) -> bytes:
        return self.fp.read()


class _FileSink:
    def __init__(self, out: BinaryIO, src: BinaryIO):
        self.out, self.src = out, src

    def write(self, data: bytes) -> None:
        self.out.write(data)

    def tee(self, reader) -> None:
        pass

    untee = tee

    def copy_range(self, start: int, length: int) -> None:
        """Kernel-side copy when the platform offers it, else 1 MiB chunks."""
        self.out.flush()
        size = os.fstat(self.src.fileno()).st_size
        if start + length > size:
            raise StreamCopyError("the source file is truncated")
        src_fd, out_fd = self.src.fileno(), self.out.fileno()
        done = 0
        try:
            while done < length:
                n = os.copy_file_range(src_fd, out_fd, length - done, start + done)
                if n == 0:
                    raise StreamCopyError("the source file is truncated")
                done += n
        except (AttributeError, OSError):
            self._copy_chunks(start + done, length - done)

    def _copy_chunks(self, start: int, length: int) -> None:
        self.src.seek(start)
        while length:
            data = self.src.read(min(CHUNK, length))
            if not data:
                raise StreamCopyError("the source file is truncated")
            self.out.write(data)
            length -= len(data)
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class _InflateReader:
    """Deflated source: inflated as it is read, in bounded chunks."""

    def __init__(self, fp: BinaryIO, sink: _DeflateSink):
        self.fp = fp
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.buffer = bytearray()
        self.position = 0
        self.copy_to: _DeflateSink | None = None
        self.eof = False

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n and not self.eof:
            data = self.inflater.unconsumed_tail or self.fp.read(CHUNK)
            if not data:
                self.buffer += self.inflater.flush()
                self.eof = True
            else:
                self.buffer += self.inflater.decompress(data, CHUNK)

    def read_or_eof(self, n: int) -> bytes:
        self._fill(n)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        self.position += len(data)
        if self.copy_to is not None:
            self.copy_to.write(data)
        return data

    def read(self, n: int) -> bytes:
        data = self.read_or_eof(n)
        if len(data) < n:
            raise StreamCopyError("the deflated source is truncated")
        return data

    def unread(self, data: bytes) -> None:
        self.buffer[:0] = data
        self.position -= len(data)

    def skip(self, n: int) -> None:
        while n:
            n -= len(self.read(min(n, CHUNK)))

    def tell(self) -> int:
        return self.position

    def read_rest(self) -> bytes:
        chunks = []
        while chunk := self.read_or_eof(CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)


class _DeflateSink:
    def __init__(self, out: BinaryIO):
        self.out = out
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)

    def write(self, data: bytes) -> None:
        self.out.write(self.deflater.compress(data))

    def tee(self, reader: _InflateReader) -> None:
        reader.copy_to = self

    def untee(self, reader: _InflateReader) -> None:
        reader.copy_to = None

    def copy_range(self, start: int, length: int) -> None:
        pass  # already copied while the element was read

    def close(self) -> None:
        self.out.write(self.deflater.flush())
        self.out.flush()
