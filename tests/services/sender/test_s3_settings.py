"""Configuring the S3 destination: added by a bucket, keys by reference, checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay_sender.main import build_destinations
from relay_sender.s3 import S3Destination
from relay_shared.settings import Destination, GcsFormat, SettingsError, load_settings


def test_a_bucket_adds_s3_unless_destinations_are_named() -> None:
    assert load_settings(s3_bucket="research-images").destinations == [Destination.OUTBOX,
                                                                       Destination.S3]
    assert load_settings(s3_bucket="research-images", destinations="outbox"
                         ).destinations == [Destination.OUTBOX]
    settings = load_settings(destinations="s3", s3_bucket="research-images")
    assert settings.s3_format is GcsFormat.DICOM and settings.s3_access_key_id is None


def test_keys_are_read_from_the_secrets_folder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "RELAY_S3_ACCESS_KEY_ID").write_text("AKIAEXAMPLE")
    (tmp_path / "RELAY_S3_SECRET_ACCESS_KEY").write_text("secret-from-a-file")
    monkeypatch.setenv("RELAY_SECRETS_DIR", str(tmp_path))
    settings = load_settings(destinations="s3", s3_bucket="research-images",
                             s3_endpoint="http://127.0.0.1:9000", s3_region="eu-west-1")
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "secret-from-a-file"
    assert "secret-from-a-file" not in repr(settings)
    (built,) = build_destinations(settings)
    assert isinstance(built, S3Destination)
    credentials = built._client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKIAEXAMPLE",
                                                                "secret-from-a-file")


@pytest.mark.parametrize(("overrides", "named"), [
    ({"destinations": "s3"}, "RELAY_S3_BUCKET is not set"),
    ({"s3_bucket": "Not_A_Bucket"}, "RELAY_S3_BUCKET"),
    ({"s3_bucket": "b-1", "s3_endpoint": "minio:9000"}, "RELAY_S3_ENDPOINT"),
    ({"s3_bucket": "b-1", "s3_format": "zip"}, "RELAY_S3_FORMAT"),
    ({"s3_bucket": "b-1", "s3_sidecar_fields": "NoSuchKeyword"}, "RELAY_S3_SIDECAR_FIELDS"),
    ({"s3_bucket": "b-1", "s3_access_key_id": "AKIAEXAMPLE"},
     "RELAY_S3_ACCESS_KEY_ID and RELAY_S3_SECRET_ACCESS_KEY go together"),
])
def test_a_wrong_value_names_its_variable(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)
