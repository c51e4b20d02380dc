"""Bounds on what a peer can make the SCP hold, set before any of its bytes are read.

pynetdicom reads a whole PDU of whatever length its header declares, and keeps a
C-STORE data set in memory until the request is complete: a peer that would never
have been allowed could make the relay hold gigabytes before an allow-list ran.
Each accepted connection is fitted, when it opens and before its reader starts, with

- a PDU length bound: before the association is accepted, what an A-ASSOCIATE-RQ
  needs; once it is, the maximum length the relay announced (PS3.8 D.1: a peer
  must not send longer). A longer PDU is not read: the connection is closed.
- a spool: the data set of a C-STORE request is written to a file in the staging
  area as its fragments arrive, through the file hook of pynetdicom's own chunked
  receive (``STORE_RECV_CHUNKED_DATASET``), with the relay's file in place of a
  temporary one so that filing it is a rename on the same disk. Past the
  per-instance cap nothing more is written and the request is answered Out of
  Resources.
- a bound on what stays in memory: a command set, or the data set of any message
  that is not a C-STORE request; past it the association is aborted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.pdu_primitives import P_DATA

log = logging.getLogger(__name__)

# An A-ASSOCIATE-RQ with 128 presentation contexts of ten 64-character transfer
# syntaxes each, and a user identity token of the largest size, stays under this.
ASSOCIATION_PDU_LIMIT = 256 * 1024
# Command sets are a few hundred bytes; an identifier or an N-service data set a few KiB.
IN_MEMORY_LIMIT = 1024 * 1024
# States in which the association has been accepted and P-DATA may arrive (PS3.8 9.2).
DATA_STATES = frozenset({"Sta6", "Sta7", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12"})
SPOOL_SUFFIX = ".receiving"
# Evt19: an unrecognised or invalid PDU; pynetdicom answers it with an A-ABORT.
ABORT_EVENT = "Evt19"

PrefixOf = Callable[[str, str, str], bytes]


class SpoolFile:
    """One C-STORE data set on its way to disk, behind its Part 10 prefix.

    Stands in for the temporary file of pynetdicom's chunked receive, which calls
    ``write``, ``file.flush``, ``close`` and ``name`` (and unlinks ``name`` after the
    handler: a file the handler has filed is no longer there to unlink)."""

    def __init__(self, folder: Path, prefix: bytes, limit: int) -> None:
        self.name = str(folder / f"{uuid.uuid4().hex}{SPOOL_SUFFIX}")
        # Not mkstemp: its 0600 would ignore RELAY_SHARED_GROUP_ACCESS (the umask decides).
        descriptor = os.open(self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660)
        self.file = open(descriptor, "wb")  # noqa: SIM115 - closed by pynetdicom or the handler
        self.file.write(prefix)
        self._left = limit
        self.too_large = False

    @property
    def path(self) -> Path:
        return Path(self.name)

    def write(self, data: bytes) -> None:
        if self.too_large:
            return
        self._left -= len(data)
        if self._left < 0:
            self.too_large = True
            self.file.truncate(0)  # the disk is given back now, not when the peer is done
            return
        self.file.write(data)

    def close(self) -> None:
        self.file.close()

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(OSError):
            os.unlink(self.name)


def clear_spool(folder: Path) -> None:
    """Data sets left half-received by a process that stopped were never acknowledged."""
    if folder.is_dir():
        for leftover in folder.glob(f"*{SPOOL_SUFFIX}"):
            leftover.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


def peer_address(assoc: Association) -> str:
    """The other end: the requestor on the SCP, the PACS when the relay retrieves."""
    return str(assoc.acceptor.address if assoc.is_requestor else assoc.requestor.address)


def bound_pdu_reads(assoc: Association, max_pdu: int) -> None:
    """Refuse, unread, a PDU longer than the association's state allows."""
    sock = assoc.dul.socket
    assert sock is not None
    read = sock.recv

    def bounded(nr_bytes: int) -> bytearray:
        state = assoc.dul.state_machine.current_state
        limit = max_pdu if state in DATA_STATES else ASSOCIATION_PDU_LIMIT
        if nr_bytes <= limit:
            return read(nr_bytes)
        log.warning("connection closed: the peer announced a PDU longer than allowed",
                    extra={"peer": peer_address(assoc), "declared_bytes": nr_bytes,
                           "limit_bytes": limit, "state": state})
        # Fewer bytes than declared: pynetdicom takes it as the connection closing.
        sock.close()
        return bytearray()

    sock.recv = bounded  # type: ignore[method-assign]


class Spooler:
    """Routes the fragments of one association's messages: data sets of C-STORE
    requests to a spool file, everything else to pynetdicom within a bound."""

    def __init__(self, assoc: Association, folder: Path, limit: int,
                 prefix_of: PrefixOf) -> None:
        self._assoc = assoc
        self._folder = folder
        self._limit = limit
        self._prefix_of = prefix_of
        self._receive = assoc.dimse.receive_primitive
        self._files: list[SpoolFile] = []
        self._aborted = False

    def install(self) -> None:
        self._assoc.dimse.receive_primitive = self.receive  # type: ignore[method-assign]

    def receive(self, primitive: P_DATA) -> None:
        # One fragment at a time, so that a C-STORE's spool is in place before the
        # first fragment of its data set, even one in the PDU that ends its command.
        for item in primitive.presentation_data_value_list:
            if self._aborted:
                return
            single = P_DATA()
            single.presentation_data_value_list.append(item)
            self._prepare(item[0], item[1])
            if not self._aborted:
                self._receive(single)

    def _prepare(self, context_id: int, fragment: bytes) -> None:
        message: Any = self._assoc.dimse.message
        if message is None:
            return
        is_command = bool(fragment[0] & 1)
        if not is_command and isinstance(message, C_STORE_RQ):
            if message._data_set_file is None:
                spool = self._open(message, context_id)
                message._data_set_file, message._data_set_path = spool, spool.path  # type: ignore[assignment]
            return
        held = message.encoded_command_set.tell() if is_command else message.data_set.tell()
        if held + len(fragment) > IN_MEMORY_LIMIT:
            log.warning("association aborted: a message larger than the relay holds in memory",
                        extra={"peer": peer_address(self._assoc),
                               "command": is_command, "limit_bytes": IN_MEMORY_LIMIT})
            self._aborted = True
            self._assoc.dul.event_queue.put(ABORT_EVENT)

    def _open(self, message: Any, context_id: int) -> SpoolFile:
        command = message.command_set
        try:
            syntax = str(self._assoc._accepted_cx[context_id].transfer_syntax[0])
            prefix = self._prefix_of(str(command.AffectedSOPClassUID),
                                     str(command.AffectedSOPInstanceUID), syntax)
        except Exception:  # a request the handler will refuse: what arrives is kept bare
            prefix = b""
        spool = SpoolFile(self._folder, prefix, self._limit)
        self._files = [f for f in self._files if not f.file.closed]  # filed or refused
        self._files.append(spool)
        return spool

    def discard_unfiled(self) -> None:
        """When the connection closes: a data set not filed was not acknowledged."""
        for spool in self._files:
            if spool.path.exists():
                spool.discard()
        self._files.clear()
