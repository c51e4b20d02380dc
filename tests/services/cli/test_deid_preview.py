"""Profiles tried on real files before they are deployed: `relay deid preview` and
`relay deid diff` as a user runs them, and `POST /api/v1/preview` for an admin."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session, select

from relay_shared.models import Event
from tests.services.api.seed import client, make_runtime
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import relay_env, run_relay

PATIENT = Patient("MRN-4242", "Lovelace^Ada", accession="ACC-4242")
KEEP = 'version: "now"\nattributes:\n  StudyDescription: keep\n'
PROPOSED = ('version: "proposed"\nattributes:\n  StudyDescription: remove\n'
            '  InstitutionName: {replace: "RESEARCH SITE"}\n')


def files(tmp_path: Path, instances: int = 2) -> list[Path]:
    return write_series(SeriesSpec(PATIENT, instances=instances), tmp_path / "series")


def relay(tmp_path: Path, *args: object) -> tuple[int, str]:
    result = run_relay(*map(str, args), env=relay_env({}, data_dir=tmp_path / "var"),
                       check=False)
    return result.returncode, result.stdout + result.stderr


def test_preview_prints_actions_and_the_guard_and_values_only_when_asked(
        tmp_path: Path) -> None:
    paths = files(tmp_path)
    code, out = relay(tmp_path, "deid", "preview", *paths)
    assert code == 0, out
    assert out.count("guard passes") == 2
    assert "PatientName" in out and "pseudonym [Z] -> changed" in out
    for value in PATIENT.identifying_values():
        assert value not in out

    code, out = relay(tmp_path, "deid", "preview", "--values", "--json", paths[0])
    document = json.loads(out)
    assert document["values_shown"] is True
    (shown,) = [a for a in document["files"][0]["attributes"] if a["keyword"] == "PatientName"]
    assert shown["before"] == PATIENT.name and shown["after"] != PATIENT.name


def test_preview_says_when_the_guard_would_hold_and_names_a_bad_file(tmp_path: Path) -> None:
    paths = files(tmp_path, 1)
    recipe = tmp_path / "keep.yaml"
    recipe.write_text(KEEP)  # the study description holds the patient's name
    (tmp_path / "not-dicom.dcm").write_bytes(b"hello")
    env = relay_env({}, data_dir=tmp_path / "var", deid_recipe=recipe)
    result = run_relay("deid", "preview", str(paths[0]), str(tmp_path / "not-dicom.dcm"),
                       env=env, check=False)
    assert result.returncode == 1
    assert "would HOLD it:" in result.stdout and "(0008,1030)" in result.stdout
    assert "not-dicom.dcm\n   error: not a DICOM file" in result.stdout


def test_diff_shows_what_a_recipe_change_does_on_real_files(tmp_path: Path) -> None:
    paths = files(tmp_path)
    (tmp_path / "now.yaml").write_text(KEEP)
    (tmp_path / "proposed.yaml").write_text(PROPOSED)
    code, out = relay(tmp_path, "deid", "diff", "--recipe", tmp_path / "now.yaml",
                      "--recipe", tmp_path / "proposed.yaml", *paths)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("--- ") and "version now" in lines[0]
    assert lines[1].startswith("+++ ") and "version proposed" in lines[1]
    assert out.count("@@ ") == 2
    assert any(line.startswith("-(0008,1030)") and "keep [recipe] -> kept" in line
               for line in lines)
    assert any(line.startswith("+(0008,1030)") and "remove [recipe] -> removed" in line
               for line in lines)
    assert any(line.startswith("+(0008,0080)") and "replace [recipe] -> changed" in line
               for line in lines)
    assert any(line.startswith("-guard: (0008,1030)") for line in lines)
    assert "(0010,0010)" not in out  # what both recipes do alike is not listed
    for value in PATIENT.identifying_values():
        assert value not in out

    code, out = relay(tmp_path, "deid", "diff", "--recipe", tmp_path / "now.yaml",
                      "--recipe", tmp_path / "now.yaml", "--json", paths[0])
    assert code == 0
    assert json.loads(out)["files"][0]["changes"] == []


def test_diff_needs_two_recipes(tmp_path: Path) -> None:
    code, out = relay(tmp_path, "deid", "diff", "--recipe", "none", *files(tmp_path, 1))
    assert code == 2 and "give --recipe twice" in out


def test_the_api_previews_uploads_for_an_admin_only_and_keeps_nothing(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    paths = files(tmp_path)
    uploads = [("files", (p.name, p.read_bytes(), "application/dicom")) for p in paths]
    assert client(rt, "operator").post("/api/v1/preview", files=uploads).status_code == 403
    answer = client(rt, "admin").post("/api/v1/preview", files=uploads)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["project"] == "default" and body["options"] == ["rtnLongModifDatesOpt"]
    assert [f["file"] for f in body["files"]] == [p.name for p in paths]
    assert all(f["passes_guard"] for f in body["files"])
    (name,) = [a for a in body["files"][0]["attributes"] if a["keyword"] == "PatientName"]
    assert name["original"] == PATIENT.name and name["action"] == "pseudonym"
    work = rt.settings.work_dir
    assert work is not None and not [p for p in work.rglob("*") if p.is_file()]
    with Session(rt.engine) as session:
        (event,) = session.exec(select(Event).where(Event.kind == "read"))
        assert "preview of 2 uploaded file(s)" in event.detail
    assert client(rt, "admin").post("/api/v1/preview?project=nope",
                                     files=uploads).status_code == 404


def test_the_api_refuses_an_upload_larger_than_the_body_limit(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var", api_max_body_bytes=4096)
    (path,) = files(tmp_path, 1)
    big = path.read_bytes() + b"\0" * 8192
    answer = client(rt, "admin").post("/api/v1/preview",
                                      files=[("files", ("big.dcm", big, "application/dicom"))])
    assert answer.status_code == 413


def test_preview_uses_the_named_projects_profile(tmp_path: Path) -> None:
    (path,) = files(tmp_path, 1)
    (tmp_path / "full-dates.yaml").write_text(KEEP)
    (tmp_path / "projects.yaml").write_text(
        "version: 1\n"
        "destinations:\n  out: {kind: outbox, path: out}\n"
        "projects:\n"
        "  - name: registry\n"
        "    deid: {options: [rtnLongFullDatesOpt], recipe: full-dates.yaml}\n"
        "    destinations: [out]\n")
    env = relay_env({}, data_dir=tmp_path / "var", projects=tmp_path / "projects.yaml")
    shown = run_relay("deid", "preview", "--project", "registry", "--json", str(path), env=env,
                      check=False)
    attributes = {a["keyword"]: a for a in json.loads(shown.stdout)["files"][0]["attributes"]}
    assert attributes["StudyDate"]["outcome"] == "kept"  # full dates under this project
    assert attributes["StudyDescription"]["code"] == "recipe"
    default = run_relay("deid", "preview", "--json", str(path),
                        env=relay_env({}, data_dir=tmp_path / "var"))
    attributes = {a["keyword"]: a for a in json.loads(default.stdout)["files"][0]["attributes"]}
    assert attributes["StudyDate"]["outcome"] == "changed"  # shifted by the relay's default
    unknown = run_relay("deid", "preview", "--project", "nope", str(path), env=env, check=False)
    assert unknown.returncode == 2 and "--project nope: no such project; known: registry" in \
        unknown.stderr
