"""The projects file: what it accepts, and every mistake refused with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from relay_shared.projects import (
    DEFAULT,
    Action,
    ProjectsError,
    load_projects,
    load_projects_file,
)
from relay_shared.settings import Settings

GOOD = """\
version: 1
destinations:
  lung-orthanc: {kind: orthanc, url: "http://127.0.0.1:9", username: relay, password_env: LUNG_PW}
  other-orthanc: {kind: orthanc, url: "http://127.0.0.1:8043"}
  archive: {kind: outbox, path: archive}
projects:
  - name: lung-trial
    match:
      source: [scp, folder]
      calling_ae: CT_ROOM1
      header:
        Modality: {in: [CT]}
        SliceThickness: {max: 5}
    deid: {key_id: lung1, secret_env: LUNG_SECRET}
    destinations: [lung-orthanc, archive]
    dispatch: study
  - name: registry
    match: {header: {Modality: {equals: MR}}}
    deid: {options: [rtnLongFullDatesOpt]}
    destinations: [other-orthanc]
  - name: unmatched
    action: drop
"""


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUNG_PW", "orthanc-password")
    monkeypatch.setenv("LUNG_SECRET", "lung-secret-0123456789")
    monkeypatch.delenv("RELAY_SECRETS_DIR", raising=False)


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "projects.yaml"
    path.write_text(textwrap.dedent(text))
    return load_projects_file(path, Settings(data_dir=tmp_path))


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ProjectsError) as caught:
        load(tmp_path, text)
    return [p.split("projects.yaml:", 1)[1] for p in caught.value.problems]


def test_a_good_file_resolves_each_project_with_the_settings_for_what_it_leaves_out(
        tmp_path: Path) -> None:
    projects = load(tmp_path, GOOD)
    lung = projects.projects["lung-trial"]  # type: ignore[attr-defined]
    assert lung.deid.key_id == "lung1" and lung.deid.secret == "lung-secret-0123456789"
    assert lung.deid.options == ("rtnLongModifDatesOpt",)  # RELAY_DEID_OPTIONS' default
    assert lung.destinations == ("lung-orthanc", "archive")
    registry = projects.projects["registry"]  # type: ignore[attr-defined]
    assert registry.deid.options == ("rtnLongFullDatesOpt",)
    assert registry.deid.key_id == "k1"  # RELAY_DEID_KEY_ID's default
    assert projects.projects["unmatched"].action is Action.DROP  # type: ignore[attr-defined]
    assert projects.secret("LUNG_PW") == "orthanc-password"  # type: ignore[attr-defined]
    assert len(projects.sha256) == 64  # type: ignore[attr-defined]


def test_a_secret_may_come_from_a_file_in_the_secrets_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LUNG_SECRET")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "LUNG_SECRET").write_text("from-a-mounted-file-0123\n")
    monkeypatch.setenv("RELAY_SECRETS_DIR", str(secrets_dir))
    lung = load(tmp_path, GOOD).projects["lung-trial"]  # type: ignore[attr-defined]
    assert lung.deid.secret == "from-a-mounted-file-0123"


def test_without_a_file_one_default_project_sends_to_the_configured_destinations(
        tmp_path: Path) -> None:
    projects = load_projects(Settings(data_dir=tmp_path, deid_key_id="k9"))
    assert list(projects.projects) == [DEFAULT] and projects.implicit
    default = projects.projects[DEFAULT]
    assert default.destinations == ("outbox",) and default.deid.key_id == "k9"
    assert projects.sha256 is None


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(GOOD.replace("    dispatch: study", "    dispatch: study\n    colour: red"),
                 "17: projects.0.colour: unknown key", id="unknown-key"),
    pytest.param(GOOD.replace("{max: 5}", '{regex: "(?i)chest["}'),
                 "13: projects.0.match.header.SliceThickness.regex: not a valid regular "
                 "expression", id="bad-regex"),
    pytest.param(GOOD.replace("[other-orthanc]", "[other-orthanc, nowhere]"),
                 "20: unknown destination 'nowhere'", id="unknown-destination"),
    pytest.param(GOOD.replace("LUNG_SECRET}", "NO_SUCH_SECRET}"),
                 "14: secret NO_SUCH_SECRET is not set", id="missing-secret"),
    pytest.param(GOOD.replace("Modality: {in: [CT]}", "Modalty: {in: [CT]}"),
                 "12: projects.0.match.header.Modalty: 'Modalty' is not a DICOM keyword",
                 id="unknown-keyword"),
    pytest.param(GOOD.replace("kind: outbox", "kind: ftp"),
                 "5: destinations.archive: Input tag 'ftp'", id="unknown-kind"),
    pytest.param(GOOD.replace("username: relay", "username: relay, password: x"),
                 "3: destinations.lung-orthanc.password: unknown key", id="secret-in-clear"),
    pytest.param(GOOD.replace("name: registry", "name: lung-trial"),
                 "17: project 'lung-trial' is defined twice", id="duplicate-project"),
    pytest.param(GOOD.replace("name: registry", "name: Registry!"),
                 "17: projects.1.name: String should match pattern", id="bad-name"),
    pytest.param(GOOD.replace("    action: drop", "    action: forward"),
                 "22: projects.2.action: Input should be 'send', 'drop' or 'hold'",
                 id="unknown-action"),
    pytest.param(GOOD.replace("[rtnLongFullDatesOpt]", "[rtnEverythingOpt]"),
                 "19: unknown de-identification option 'rtnEverythingOpt'", id="bad-option"),
    pytest.param(GOOD.replace("    destinations: [other-orthanc]\n", ""),
                 "17: projects.1: a project that sends needs at least one destination",
                 id="send-nowhere"),
    pytest.param(GOOD.replace("version: 1", "version: 2"),
                 "1: version: Input should be 1", id="wrong-version"),
    pytest.param(GOOD.replace("  - name: unmatched", "  - name: unmatched\n    name: again"),
                 "22: 'name' is given twice", id="duplicate-key"),
    pytest.param(GOOD.replace("[scp, folder]", "[scp, carrier-pigeon]"),
                 "9: projects.0.match.source.1: Input should be", id="unknown-source"),
    pytest.param(GOOD.replace("match: {header", "match: {header: [}"),
                 "18: not valid YAML", id="bad-yaml"),
    pytest.param(GOOD.replace("{max: 5}", "{}"),
                 "13: projects.0.match.header.SliceThickness: a condition needs one of",
                 id="empty-condition"),
])
def test_each_mistake_is_refused_with_its_line(tmp_path: Path, text: str, expected: str
                                               ) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found


def test_a_recipe_that_does_not_load_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "lung.yaml").write_text("version: x\nattributes:\n  NotAThing: remove\n")
    found = problems(tmp_path, GOOD.replace("key_id: lung1,", "key_id: lung1, recipe: lung.yaml,"))
    assert any(p.startswith("14: the recipe cannot be used") for p in found), found


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("[other-orthanc]", "[nowhere]").replace("LUNG_SECRET}", "NOPE}")
    found = problems(tmp_path, text)
    assert [p.split(":")[0] for p in found] == ["14", "20"]


def test_secret_values_never_appear_in_the_representation(tmp_path: Path) -> None:
    projects = load(tmp_path, GOOD)
    assert "lung-secret-0123456789" not in repr(projects)
    assert "orthanc-password" not in repr(projects)
