"""Every package folder is part of what gets installed: the list in
pyproject.toml is kept by hand, and a subpackage left out of it would be
missing from the container image while every test run from the source tree passes."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def folders_with_packages(setuptools: dict) -> dict[str, Path]:
    """Import name -> folder, for every folder holding an __init__.py under a mapped root."""
    found: dict[str, Path] = {}
    for name, folder in setuptools["package-dir"].items():
        root = ROOT / folder
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            if "__pycache__" in parts:
                continue
            found[".".join((name, *parts))] = init.parent
    return found


def test_every_package_folder_is_in_the_distribution() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = folders_with_packages(setuptools)
    missing = sorted(set(found) - set(setuptools["packages"]))
    assert not missing, f"package folders missing from [tool.setuptools] packages: {missing}"
    assert not set(setuptools["packages"]) - set(found), "packages listed without a folder"
