"""Command-line tools some tests run (dcmtk, openssl)."""

from __future__ import annotations

import os
import shutil

import pytest


def needs_tool(tool: str, package: str) -> pytest.MarkDecorator:
    """Skipped on a machine without the tool. Not in CI: `make test` installs it there
    (make system-deps), so a missing tool fails the tests that need it instead of
    letting them pass unseen."""
    missing = shutil.which(tool) is None and not os.environ.get("CI")
    return pytest.mark.skipif(missing, reason=f"needs {tool} (Debian package {package})")
