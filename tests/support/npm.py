"""npm packages the tests use, installed from each folder's package-lock.json."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.services import ensure_debian_packages


def npm_installed(folder: Path) -> Path:
    """`npm ci` in `folder` unless its node_modules is as its lock file says; returns
    the node_modules folder."""
    ensure_debian_packages(("npm", "npm"))
    modules = folder / "node_modules"
    installed = modules / ".package-lock.json"
    lock = folder / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=folder, check=True, timeout=600)
    return modules
