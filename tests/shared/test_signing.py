"""The signing key and signatures over canonical JSON: what a third party needs to check a
manifest without the relay (OpenSSL here), and what the relay refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from relay_shared.manifest import (
    InstanceSent,
    SeriesFacts,
    build_manifest,
    check_manifest,
    manifest_bytes,
)
from relay_shared.production import RequiredInProduction
from relay_shared.settings import load_settings
from relay_shared.signing import (
    NotCanonical,
    SigningKeyError,
    canonical,
    derived_signing_key,
    load_public_key,
    load_signing_key,
    new_private_pem,
    public_key_for,
    public_pem,
    signature_problems,
    signing_key_for,
)
from tests.support.tools import needs_tool

STRONG = "k3Jq9vQ2xLw8ZpR4tY7uN1mB6cV0sD5fG-hJ8kL2a"


def body() -> dict[str, object]:
    facts = SeriesFacts(3, "2.25.11", "2.25.12", "lung-screening", "ab" * 32,
                        {"profile": "PS3.15", "options": ["rtnLongModifDatesOpt"],
                         "table_sha256": "cd" * 32, "recipe": None, "key_id": "k1",
                         "engine_version": "1", "method_codes": ["113100"]})
    content = hashlib.sha256(b"0123456789").hexdigest()
    return build_manifest(facts, "0.1.0", [InstanceSent("2.25.13", 10, content)], [])


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical({"b": [1, None], "a": "é\n"}) == '{"a":"é\\n","b":[1,null]}'.encode()
    with pytest.raises(NotCanonical):
        canonical({"a": 1.5})


def test_a_signature_holds_and_fails_on_any_change() -> None:
    key = load_signing_key(new_private_pem())
    signed = key.sign(body())
    assert signature_problems(signed, None) == ([], key.key_id)
    assert signature_problems(signed, key.public) == ([], key.key_id)
    changed = json.loads(json.dumps(signed))
    changed["project"]["name"] = "lung-screeninh"
    problems, _ = signature_problems(changed, None)
    assert problems == ["the signature does not match the manifest's content"]
    other = load_signing_key(new_private_pem())
    problems, _ = signature_problems(signed, other.public)
    assert problems and "not the given public key" in problems[0]


def test_an_embedded_key_must_be_the_one_its_id_names() -> None:
    key, other = load_signing_key(new_private_pem()), load_signing_key(new_private_pem())
    forged = other.sign(body())
    forged["signature"]["key_id"] = key.key_id  # another key's signature under this id
    problems, _ = signature_problems(forged, None)
    assert problems and "not the embedded public key" in problems[0]


def test_the_indented_file_verifies_and_files_are_matched_by_hash(tmp_path: Path) -> None:
    key = load_signing_key(new_private_pem())
    document = json.loads(manifest_bytes(key.sign(body())))
    good = tmp_path / "2.25.13.dcm"
    good.write_bytes(b"0123456789")
    assert check_manifest(document, [good]).ok
    good.write_bytes(b"0123456788")
    report = check_manifest(document, [good])
    assert report.failures == [f"{good}: its SHA-256 is not the one the manifest gives for "
                               "instance 2.25.13"]


@needs_tool("openssl", "openssl")
def test_openssl_verifies_a_manifest_from_the_documented_recipe(tmp_path: Path) -> None:
    """docs/review.md: canonical body, base64 signature, public key PEM: no relay code."""
    key = load_signing_key(new_private_pem())
    document = key.sign(body())
    signature = document.pop("signature")
    (tmp_path / "body.json").write_bytes(json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(signature["value"]))
    (tmp_path / "key.pem").write_text(public_pem(key.public))

    def openssl_verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                               str(tmp_path / "key.pem"), "-rawin", "-in",
                               str(tmp_path / "body.json"), "-sigfile",
                               str(tmp_path / "sig.bin")], capture_output=True, text=True)

    assert openssl_verify().returncode == 0
    raw = (tmp_path / "body.json").read_bytes()
    (tmp_path / "body.json").write_bytes(raw.replace(b"0.1.0", b"0.1.1"))
    assert openssl_verify().returncode != 0


def test_the_key_comes_from_pem_text_or_a_file_and_bad_ones_are_named(tmp_path: Path) -> None:
    pem = new_private_pem()
    (tmp_path / "key.pem").write_text(pem)
    assert load_signing_key(str(tmp_path / "key.pem")).key_id == load_signing_key(pem).key_id
    with pytest.raises(SigningKeyError, match="RELAY_SIGNING_KEY: neither a PEM key"):
        load_signing_key(str(tmp_path / "absent.pem"))
    rsa = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                          "rsa_keygen_bits:1024"], capture_output=True, text=True, check=True)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_signing_key(rsa.stdout)
    public = public_pem(load_signing_key(pem).public)
    assert load_public_key(public.encode()) == load_signing_key(pem).public


def test_production_needs_a_signing_key_or_manifests_off(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, env="production", deid_secret=STRONG,
                             api_tokens="a:reader:" + "0" * 64)
    with pytest.raises(RequiredInProduction, match=r"RELAY_SIGNING_KEY.*RELAY_MANIFESTS=false"):
        signing_key_for(settings)
    with pytest.raises(RequiredInProduction):
        public_key_for(settings)
    assert signing_key_for(settings.model_copy(update={"manifests": False})) is None
    pem = new_private_pem()
    keyed = settings.model_copy(update={"signing_key": SecretStr(pem)})
    key = signing_key_for(keyed)
    assert key is not None and not key.derived
    public_only = settings.model_copy(update={"signing_key": SecretStr(public_pem(key.public))})
    assert public_key_for(public_only) == (key.public, False)


def test_development_derives_one_key_for_every_process(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    key = signing_key_for(settings)
    assert key is not None and key.derived
    assert key.key_id == derived_signing_key(settings.deid_secret.get_secret_value().encode()
                                             ).key_id
    assert public_key_for(settings) == (key.public, True)
