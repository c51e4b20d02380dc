"""Staging folder and file names do not let anyone holding a list of UIDs find one."""

from __future__ import annotations

import hashlib

from relay_ingest.staging import uid_key

UID = "1.2.826.0.1.3680043.8.498.4711"


def test_staging_names_are_keyed_not_plain_hashes_of_the_uid() -> None:
    name = uid_key(UID)
    assert name == uid_key(UID)  # one series keeps one name while the process runs
    assert len(name) == 24 and UID not in name
    assert name != hashlib.sha256(UID.encode()).hexdigest()[:24]
