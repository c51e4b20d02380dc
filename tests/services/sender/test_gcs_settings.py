"""Configuring the GCS destination: off by default, added by a bucket, checked at start."""

from __future__ import annotations

import pytest

from relay_shared.settings import (
    DEFAULT_SIDECAR_FIELDS,
    Destination,
    GcsFormat,
    SettingsError,
    load_settings,
)


def test_off_unless_a_bucket_is_set() -> None:
    assert load_settings().destinations == [Destination.OUTBOX]
    assert load_settings(gcs_bucket="research-images").destinations == [Destination.OUTBOX,
                                                                         Destination.GCS]
    assert load_settings(gcs_bucket="research-images", orthanc_url="http://127.0.0.1:8042"
                         ).destinations == [Destination.ORTHANC, Destination.GCS]


def test_defaults() -> None:
    settings = load_settings(destinations="gcs", gcs_bucket="research-images")
    assert settings.gcs_format is GcsFormat.DICOM and settings.gcs_prefix == ""
    assert settings.gcs_sidecar_fields == list(DEFAULT_SIDECAR_FIELDS)
    assert settings.gcs_endpoint is None


def test_fields_are_a_comma_list_of_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_GCS_SIDECAR_FIELDS", "Modality, BodyPartExamined")
    monkeypatch.setenv("RELAY_GCS_FORMAT", "nifti")
    settings = load_settings(gcs_bucket="research-images")
    assert settings.gcs_sidecar_fields == ["Modality", "BodyPartExamined"]
    assert settings.gcs_format is GcsFormat.NIFTI


@pytest.mark.parametrize(("overrides", "named"), [
    ({"destinations": "gcs"}, "RELAY_GCS_BUCKET is not set"),
    ({"gcs_bucket": "Not A Bucket"}, "RELAY_GCS_BUCKET"),
    ({"gcs_bucket": "b-1", "gcs_format": "dicomdir"}, "RELAY_GCS_FORMAT"),
    ({"gcs_bucket": "b-1", "gcs_sidecar_fields": "Modality,NoSuchKeyword"},
     "RELAY_GCS_SIDECAR_FIELDS"),
    ({"gcs_bucket": "b-1", "gcs_sidecar_fields": "OtherPatientIDsSequence"},
     "RELAY_GCS_SIDECAR_FIELDS"),
    ({"gcs_bucket": "b-1", "gcs_endpoint": "127.0.0.1:9023"}, "RELAY_GCS_ENDPOINT"),
])
def test_a_wrong_value_names_its_variable(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)
