"""`relay projects check|explain`, and a service refusing a bad projects file at start."""

from __future__ import annotations

from pathlib import Path

from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import relay_env, run_relay

PROJECTS = """\
version: 1
destinations:
  lung-orthanc: {kind: orthanc, url: "http://127.0.0.1:9", password_env: LUNG_PASSWORD}
projects:
  - name: lung-trial
    match: {header: {Modality: {in: [CT]}, StudyDescription: {regex: "(?i)chest"}}}
    destinations: [lung-orthanc]
  - name: unmatched
    action: drop
"""


def test_check_accepts_a_good_file_without_printing_its_secrets(tmp_path: Path) -> None:
    (tmp_path / "projects.yaml").write_text(PROJECTS)
    env = relay_env({"LUNG_PASSWORD": "never-printed-secret"}, data_dir=tmp_path / "var")
    result = run_relay("projects", "check", str(tmp_path / "projects.yaml"), env=env)
    assert "2 project(s), 1 destination(s)" in result.stdout
    assert "never-printed-secret" not in result.stdout + result.stderr


def test_check_prints_each_problem_with_file_and_line_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(PROJECTS.replace("(?i)chest", "(?i)chest[").replace("action: drop",
                                                                        "action: dorp"))
    result = run_relay("projects", "check", str(path), env=relay_env({}, data_dir=tmp_path),
                       check=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{path}:6", "projects.0.match.header.StudyDescription.regex"],
        [f"{path}:9", "projects.1.action"]], lines


def test_explain_names_the_project_and_the_condition_that_turned_each_earlier_one_away(
        tmp_path: Path) -> None:
    (tmp_path / "projects.yaml").write_text(PROJECTS)
    write_series(SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=1), tmp_path / "ct")
    write_series(SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=1, modality="MR"),
                 tmp_path / "mr")
    env = relay_env({"LUNG_PASSWORD": "x"}, data_dir=tmp_path / "var")
    result = run_relay("projects", "explain", str(tmp_path / "projects.yaml"),
                       str(tmp_path / "ct" / "IM00000.dcm"), str(tmp_path / "mr" / "IM00000.dcm"),
                       env=env)
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'ct' / 'IM00000.dcm'}: lung-trial (send)",
        f"{tmp_path / 'mr' / 'IM00000.dcm'}: unmatched (drop)",
        "  lung-trial: Modality in ['CT'] does not hold"]
    assert "Doe" not in result.stdout and "MRN-1" not in result.stdout


def test_a_service_refuses_to_start_on_a_bad_projects_file_naming_the_line(
        tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(PROJECTS.replace("[lung-orthanc]", "[lung-orthnac]"))
    env = relay_env({"LUNG_PASSWORD": "x"}, data_dir=tmp_path / "var", projects=path,
                    metrics_port=0)
    run_relay("db", "upgrade", env=env)
    result = run_relay("sender", env=env, check=False)
    assert result.returncode == 2
    assert f"{path}:7: unknown destination 'lung-orthnac'" in result.stderr
