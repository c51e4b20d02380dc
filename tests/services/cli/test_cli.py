"""The `relay` command as a user runs it: clear refusals, atomic submit, tokens."""

from __future__ import annotations

from pathlib import Path

from relay_api.auth import hash_token, parse_entries
from tests.support.services import relay_env, run_relay


def test_an_invalid_setting_stops_with_its_name(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", api_port="eighty")
    result = run_relay("api", env=env, check=False)
    assert result.returncode == 2
    assert "RELAY_API_PORT" in result.stderr


def test_a_service_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", metrics_port=0)
    result = run_relay("ingest", env=env, check=False)
    assert result.returncode == 3
    assert "relay db upgrade" in result.stderr
    run_relay("db", "upgrade", env=env)


def test_a_bad_recipe_stops_deid_naming_the_line(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "1"\nattributes:\n  PatientNme: keep\n')
    env = relay_env({}, data_dir=tmp_path / "var", deid_recipe=recipe, metrics_port=0)
    run_relay("db", "upgrade", env=env)
    result = run_relay("deid", env=env, check=False)
    assert result.returncode == 2
    assert "recipe.yaml:3" in result.stderr and "PatientNme" in result.stderr


def test_submit_renames_a_complete_copy_into_incoming(tmp_path: Path) -> None:
    source = tmp_path / "series-1"
    source.mkdir()
    for n in range(3):
        (source / f"{n}.dcm").write_bytes(b"x" * 100)
    env = relay_env({}, data_dir=tmp_path / "var")
    run_relay("submit", str(source), env=env)
    incoming = list((tmp_path / "var" / "incoming").iterdir())
    assert [p.name for p in incoming] == ["series-1"]
    assert sorted(p.name for p in incoming[0].iterdir()) == ["0.dcm", "1.dcm", "2.dcm"]


def test_token_new_prints_an_entry_that_admits_the_token(tmp_path: Path) -> None:
    result = run_relay("token", "new", "--name", "pacs-team", "--role", "operator",
                       env=relay_env({}))
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    (entry,) = parse_entries([lines["entry"]])
    assert entry.role.name == "OPERATOR"
    assert entry.name == "pacs-team"
    assert entry.sha256_hex == hash_token(lines["token"])
