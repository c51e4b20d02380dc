"""Read a header without its pixel data (`load_header`), and write a
de-identified header followed by the source's pixel data, copied as raw
bytes. The one module of the package that does I/O.

The pixel data is never decoded and never held whole: the header's parser
knows where it starts, and its elements are copied by the kernel
(copy_file_range) or in chunks. Deflated files are inflated and deflated
again as a stream.

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
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset

from ..dicom.header import (
    MAX_INFLATED_BYTES,
    PREAMBLE,
    Encoding,
    Header,
    Item,
    Truncated,
    encode_item,
    encode_meta,
    header_from_dataset,
    parse_dataset,
    parse_file,
    parse_file_meta,
)
from ..dicom.vocabulary import (
    ITEM,
    ITEM_END,
    LAST_PIXEL_TAG,
    LONG_LENGTH_VRS,
    PIXEL_TAGS,
    SEQUENCE_END,
    UNDEFINED_LENGTH,
)
from ..reasons import RelayError

LONG_VRS = frozenset(vr.encode() for vr in LONG_LENGTH_VRS)
CHUNK = 1 << 20
HEAD_BYTES = 1 << 16  # a header is a few KB: read this much first, more if needed

Trailing = Callable[[Item], Item | None]


class StreamCopyError(RelayError, ValueError):
    """The source cannot be copied: truncated, or not the encoding claimed
    (fixed words, never a value of the file)."""

    code = "unreadable_pixels"


def load_header(path: Path, max_inflated_bytes: int = MAX_INFLATED_BYTES) -> Header:
    """The header of a Part 10 file, without its pixel data; raises
    `DicomFormatError` for what is not one."""
    with open(path, "rb") as fp:
        data = fp.read(HEAD_BYTES)
        while True:
            complete = len(data) < HEAD_BYTES or not fp.peek(1)
            try:
                return parse_file(data, complete, max_inflated_bytes)
            except Truncated:
                if complete:
                    raise
                data += fp.read(len(data))  # a header this long is rare: read twice as much


def write_deidentified(src_path: Path, dst_path: Path, header: Header | Dataset, *,
                       trailing: Trailing | None = None, fsync: bool = False) -> None:
    """Write `header` (with its file meta) and the pixel data of `src_path`
    to `dst_path`, atomically: the file appears under its name complete or
    not at all. `header` must have been read from `src_path`: it knows
    where the pixel data starts. (A pydicom Dataset is converted once, here,
    and told where the source's pixel data is.)"""
    if isinstance(header, Dataset):
        header = _located(header_from_dataset(header), load_header(src_path))
    dst_path = Path(dst_path)
    part = dst_path.with_name(dst_path.name + ".part")
    try:
        with open(src_path, "rb") as src, open(part, "wb") as out:
            _write_header(src, out, header, trailing)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(part, dst_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _located(header: Header, source: Header) -> Header:
    if (header.encoding is not source.encoding or header.deflated != source.deflated):
        raise StreamCopyError("the header's transfer syntax differs from the source's")
    header.pixel_offset = source.pixel_offset
    return header


def _write_header(src: BinaryIO, out: BinaryIO, header: Header,
                  trailing: Trailing | None) -> None:
    """Header bytes, then the pixel elements copied from where the header
    says they start; no walk through the source's header."""
    body, enc = header.body, header.encoding
    tail = {t: e for t, e in body.items() if t > LAST_PIXEL_TAG}
    if tail:
        body = {t: e for t, e in body.items() if t <= LAST_PIXEL_TAG}
    out.write(PREAMBLE + (encode_meta(header.meta) if header.meta is not None else b""))
    reader: _InflateReader | _FileReader
    sink: _DeflateSink | _FileSink
    if header.deflated:
        sink = _DeflateSink(out)
        src.seek(parse_file_meta(src.read(HEAD_BYTES))[1])
        reader = _InflateReader(src, sink)
    else:
        sink, reader = _FileSink(out, src), _FileReader(src)
    sink.write(encode_item(body, enc))
    if header.pixel_offset is not None:
        reader.seek(header.pixel_offset)
        if _peek_tag(reader, enc) not in PIXEL_TAGS:
            raise StreamCopyError("the header was not read from this source")
        while _peek_tag(reader, enc) in PIXEL_TAGS:
            _copy_element(reader, sink, enc)
        if not tail and trailing is not None:
            tail = _trailing(reader, enc, trailing)
    if tail:
        sink.write(encode_item(tail, enc))
    sink.close()


def _trailing(reader, enc: Encoding, trailing: Trailing) -> Item:
    raw = reader.read_rest()
    if not raw:
        return {}
    kept = trailing(parse_dataset(raw, 0, enc)[0])
    return {t: e for t, e in (kept or {}).items() if t > LAST_PIXEL_TAG}


# -- walking element headers -------------------------------------------------

def _peek_tag(reader, enc: Encoding) -> int | None:
    head = reader.read_or_eof(4)
    if len(head) < 4:
        return None
    reader.unread(head)
    group, element = struct.unpack(enc.order + "HH", head)
    return (group << 16) | element


def _element_header(reader, enc: Encoding, implicit: bool) -> tuple[bytes, int]:
    reader.skip(4)  # the tag: the caller peeked it already
    if implicit:
        return b"", struct.unpack(enc.order + "L", reader.read(4))[0]
    vr = reader.read(2)
    if vr in LONG_VRS:
        return vr, struct.unpack(enc.order + "2xL", reader.read(6))[0]
    return vr, struct.unpack(enc.order + "H", reader.read(2))[0]


def _skip_element(reader, enc: Encoding, implicit: bool) -> None:
    vr, length = _element_header(reader, enc, implicit)
    if length == UNDEFINED_LENGTH:
        # PS3.5 6.2.2: an UN value of undefined length is implicit VR inside.
        _skip_items(reader, enc, implicit or vr == b"UN")
    else:
        reader.skip(length)


def _skip_items(reader, enc: Encoding, implicit: bool) -> None:
    while True:
        tag, length = _item_header(reader, enc)
        if tag == SEQUENCE_END:
            return
        if tag != ITEM:
            raise StreamCopyError("expected an item in a sequence of undefined length")
        if length != UNDEFINED_LENGTH:
            reader.skip(length)
            continue
        while _peek_tag(reader, enc) != ITEM_END:
            _skip_element(reader, enc, implicit)
        _item_header(reader, enc)


def _item_header(reader, enc: Encoding) -> tuple[int, int]:
    group, element, length = struct.unpack(enc.order + "HHL", reader.read(8))
    return (group << 16) | element, length


def _copy_element(reader, sink, enc: Encoding) -> None:
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

    def seek(self, offset: int) -> None:
        self.fp.seek(offset)

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

    def seek(self, offset: int) -> None:
        """Forward only: the offset in the inflated dataset."""
        self.skip(offset - self.position)

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
