"""A project's review gate: its own, the relay's default, or a mistake named by its line."""

from __future__ import annotations

from pathlib import Path

from relay_shared.projects import load_projects, load_projects_file
from relay_shared.review import ReviewChoice, ReviewMode
from relay_shared.settings import Settings
from tests.shared.projects.test_load import problems, secrets  # noqa: F401

FILE = """\
version: 1
destinations:
  archive: {kind: outbox, path: archive}
projects:
  - name: trial
    review: {mode: sample, one_in: 5}
    destinations: [archive]
  - name: teaching
    review: {mode: off}   # YAML reads it as false: taken as off
    destinations: [archive]
  - name: registry
    destinations: [archive]
"""


def test_each_project_has_its_review_and_the_rest_take_the_default(tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(FILE)
    settings = Settings(data_dir=tmp_path, review_mode=ReviewMode.ALL)
    projects = load_projects_file(path, settings).projects
    assert projects["trial"].review == ReviewChoice(ReviewMode.SAMPLE, 5)
    assert projects["teaching"].review == ReviewChoice(ReviewMode.OFF, 20)
    assert projects["registry"].review == ReviewChoice(ReviewMode.ALL, 20)


def test_without_a_file_the_settings_choose(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, review_mode=ReviewMode.SAMPLE, review_one_in=50)
    (only,) = load_projects(settings).projects.values()
    assert only.review == ReviewChoice(ReviewMode.SAMPLE, 50)


def test_a_wrong_review_is_named_with_its_line(tmp_path: Path) -> None:
    found = problems(tmp_path, FILE.replace("{mode: sample, one_in: 5}",
                                            "{mode: sometimes, one_in: 0}"))
    assert any(p.startswith("6:") and "mode" in p for p in found), found
    assert any("one_in" in p for p in found)
