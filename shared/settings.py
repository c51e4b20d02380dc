"""The one settings object every service is built from.

Built once at start-up (``Settings()``) and passed down; nothing below the entry
points reads the environment. Defaults run on one machine with no services:
SQLite and the work store under ``./var/``, the in-process bus and a local
outbox folder as the only destination.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydicom.datadict import dictionary_VR, tag_for_keyword

from relay_shared.dicom.syntaxes import check_transfer_syntaxes
from relay_shared.dicomfiles import DEFAULT_MAX_INFLATED_BYTES, DEFAULT_MAX_INSTANCE_BYTES
from relay_shared.notify.hooks import Webhook
from relay_shared.production import Insecure, global_refusals
from relay_shared.review import DEFAULT_ONE_IN, ReviewMode
from relay_shared.settings_access import AccessSettings

# A well-known placeholder: fine on a laptop, refused in production.
DEVELOPMENT_SECRET = "development-only-secret-change-me"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Destination(StrEnum):
    OUTBOX = "outbox"
    ORTHANC = "orthanc"
    DICOM = "dicom"
    DICOMWEB = "dicomweb"
    GCS = "gcs"
    S3 = "s3"


class GcsFormat(StrEnum):
    DICOM = "dicom"
    NIFTI = "nifti"


# Series-level attributes a researcher searches on; all as the profile left them.
DEFAULT_SIDECAR_FIELDS = (
    "Modality", "BodyPartExamined", "SeriesDescription", "SliceThickness", "PixelSpacing",
    "Rows", "Columns", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyDate",
    "SeriesDate",
)


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_ae_entry(entry: str) -> tuple[str, tuple[str, int] | None]:
    """An AE title, and its address when written TITLE@host:port."""
    title, at, address = entry.partition("@")
    title = title.strip()
    if not title or len(title) > 16 or "\\" in title:
        raise ValueError(f"{entry!r} is not an AE title (1 to 16 characters, no backslash)")
    if not at:
        return title, None
    host, colon, port = address.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{entry!r}: an address is written TITLE@host:port")
    return title, (host.strip("[]"), int(port))


class Settings(AccessSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"

    data_dir: Path = Path("var")
    incoming_dir: Path | None = None
    work_dir: Path | None = None
    quarantine_dir: Path | None = None
    outbox_dir: Path | None = None
    staging_dir: Path | None = None

    database_url: str | None = None
    amqp_url: str | None = None
    queue_prefix: str = Field("relay", pattern=r"^[A-Za-z0-9_.-]+$")
    # Eight attempts with doubling delay ride out about four minutes of outage.
    max_attempts: int = Field(8, ge=1, le=100)
    retry_base_delay: float = Field(2.0, gt=0)
    shutdown_grace: float = Field(30.0, ge=0)
    # A series untouched this long in a working state gets its message again.
    stuck_after: float = Field(900.0, gt=0)
    sweep_interval: float = Field(15.0, gt=0)
    # An outbox row older than this was orphaned by a crash; younger ones are in hand.
    outbox_grace: float = Field(30.0, gt=0)
    # Fault injection for resilience drills: the process exits right after the named
    # stage commits and before it publishes, as a crash there would.
    fault_exit_after_commit: str | None = Field(None, pattern=r"^(deid|send)$")

    destinations: Annotated[list[Destination] | None, NoDecode] = None
    orthanc_url: str | None = None
    orthanc_username: str | None = None
    orthanc_password: SecretStr | None = None
    http_timeout: float = Field(30.0, gt=0)
    # Connections (Orthanc REST, DICOMweb STOW-RS) or associations (DICOM C-STORE) the
    # sender has open at once to one destination: one leaves the destination idle
    # between instances.
    send_concurrency: int = Field(4, ge=1, le=64)

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    metrics_port: int = Field(9100, ge=0, le=65535)

    deid_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    deid_key_id: str = Field("k1", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    deid_options: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["rtnLongModifDatesOpt"]
    )
    deid_recipe: Path | None = None
    # Coding scheme designators whose codes are the site's own, besides 99* and L:
    # their code values leave as keyed pseudonyms.
    deid_local_coding_schemes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # An external identifiers service; without it, the local keyed pseudonymizer.
    identifiers_url: str | None = None
    identifiers_token: SecretStr | None = None
    identifiers_timeout: float = Field(10.0, gt=0)
    # Keys that encrypt the original identity kept for the admin's mapping.
    identifier_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Signed manifests of delivered series: the Ed25519 key (PEM text or the path of a
    # PEM file; without it, development derives one from the deid secret and production
    # refuses to start the sender and the api), or none at all with manifests off.
    manifests: bool = True
    signing_key: SecretStr | None = None

    # The guard's own national-ID patterns, added to the built-in ones: a JSON object
    # of name to regular expression over lower-cased text, checked at start.
    guard_id_patterns: dict[str, str] = Field(default_factory=dict)

    # Burned-in text: an operator's region rules file (extends the built-in one, checked
    # at start), the OCR gate on images that may hold text, the modalities it skips, and
    # whether any legible text holds an image (else only text matching an original value).
    pixel_rules: Path | None = None
    pixel_ocr: bool = True
    pixel_ocr_off_modalities: Annotated[list[str], NoDecode] = Field(default_factory=list)
    pixel_ocr_any_text: bool = False
    _split_pixels = field_validator("pixel_ocr_off_modalities", mode="before")(_split_commas)
    # Seconds between looks for region rules an admin accepted (learned from the gate).
    pixel_learned_refresh: float = Field(10.0, ge=0)

    # The review gate of the implicit project (a projects file sets it per project): no
    # review, every series, or a keyed sample of one series in `review_one_in`.
    review_mode: ReviewMode = ReviewMode.OFF
    review_one_in: int = Field(DEFAULT_ONE_IN, ge=1, le=1_000_000)

    # Retention, in days: originals kept for the mapping, quarantined files, and the
    # working files of series that stay FAILED.
    retain_originals_days: float = Field(30.0, ge=0)
    retain_quarantine_days: float = Field(90.0, ge=0)
    retain_failed_work_days: float = Field(30.0, ge=0)
    purge_interval: float = Field(3600.0, gt=0)

    # HTTPS to destinations: verification is on unless explicitly turned off.
    tls_verify: bool = True
    tls_ca_bundle: Path | None = None

    scp_ae_title: str = Field("RELAY", min_length=1, max_length=16)
    scp_host: str = "127.0.0.1"
    scp_port: int = Field(11112, ge=0, le=65535)
    stable_age: float = Field(60.0, gt=0)
    watch_interval: float = Field(1.0, gt=0)

    # DICOM network: who may send to the SCP, and the DICOM AE and DICOMweb destinations.
    # An allowed AE may carry its address (TITLE@host:port): where the SCP reports on
    # storage commitment when the association that asked has closed.
    scp_allowed_aes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    scp_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    _scp_ae_addresses: dict[str, tuple[str, int]] = PrivateAttr(default_factory=dict)
    # How long a storage commitment request waits for instances still on their way
    # (staged, handed over, being recorded) before they are reported as failures.
    scp_commitment_timeout: float = Field(900.0, gt=0)

    _scp_ae_titles: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _split_ae_addresses(self) -> Settings:
        for entry in self.scp_allowed_aes:
            try:
                title, address = parse_ae_entry(entry)
            except ValueError as exc:
                raise ValueError(f"RELAY_SCP_ALLOWED_AES: {exc}") from None
            self._scp_ae_titles.append(title)
            if address is not None:
                self._scp_ae_addresses[title] = address
        return self

    @property
    def scp_allowed_ae_titles(self) -> list[str]:
        """The calling AE titles allowed, without the addresses some carry."""
        return list(self._scp_ae_titles)

    @property
    def scp_ae_addresses(self) -> dict[str, tuple[str, int]]:
        """The allowed AEs given an address, by AE title."""
        return dict(self._scp_ae_addresses)

    # Bounds on what arrives, and who may read what is kept (docs/security.md): the
    # largest instance received or read, what a deflated data set may inflate to (its
    # readers inflate it in memory), the SCP's associations at once, and files and
    # folders readable by the service's group as well as its user (for a shared volume).
    max_instance_bytes: int = Field(DEFAULT_MAX_INSTANCE_BYTES, ge=64 * 1024)
    max_inflated_bytes: int = Field(DEFAULT_MAX_INFLATED_BYTES, ge=64 * 1024)
    scp_max_associations: int = Field(16, ge=1, le=1000)
    shared_group_access: bool = False

    dicom_host: str | None = None
    dicom_port: int = Field(104, ge=1, le=65535)
    dicom_ae_title: str = Field("ANY-SCP", min_length=1, max_length=16)
    dicom_calling_ae_title: str = Field("RELAY", min_length=1, max_length=16)
    dicom_timeout: float = Field(30.0, gt=0)
    dicomweb_url: str | None = None
    dicomweb_username: str | None = None
    dicomweb_password: SecretStr | None = None

    # DICOM over TLS (plain DICOM unless set). The SCP: its certificate (with any
    # intermediates) and key; with a CA, client certificates are checked against it,
    # and required with scp_tls_require_client_cert (then, with an AE allow-list, the
    # calling AE title must be the certificate's CN or a DNS name of it). Associations
    # the relay opens: dicom_tls on, the CA that signs the peers (else the system's),
    # a client certificate for peers that want one, and the name the peer's
    # certificate must carry when it is not the host dialled.
    scp_tls_cert: Path | None = None
    scp_tls_key: Path | None = None
    scp_tls_ca: Path | None = None
    scp_tls_require_client_cert: bool = False
    # bcp195-nd: the modern suites only (PS3.15 B.9, Non-downgrading BCP 195). aes adds
    # TLS_RSA_WITH_AES_128_CBC_SHA (the retired AES profile, PS3.15 B.3), the one suite
    # of senders built on dcm4che2 such as Mirth Connect's DICOM Sender.
    scp_tls_profile: Literal["bcp195-nd", "aes"] = "bcp195-nd"
    dicom_tls: bool = False
    dicom_tls_ca: Path | None = None
    dicom_tls_cert: Path | None = None
    dicom_tls_key: Path | None = None
    dicom_tls_server_name: str | None = None

    @model_validator(mode="after")
    def _check_dicom_tls(self) -> Settings:
        for side in ("scp", "dicom"):
            cert, key = getattr(self, f"{side}_tls_cert"), getattr(self, f"{side}_tls_key")
            if (cert is None) != (key is None):
                raise ValueError(f"RELAY_{side.upper()}_TLS_CERT and RELAY_{side.upper()}"
                                 "_TLS_KEY go together")
        if self.scp_tls_require_client_cert and (self.scp_tls_cert is None
                                                 or self.scp_tls_ca is None):
            raise ValueError("RELAY_SCP_TLS_REQUIRE_CLIENT_CERT needs RELAY_SCP_TLS_CERT, "
                             "RELAY_SCP_TLS_KEY and RELAY_SCP_TLS_CA")
        return self

    # Pull sources. The follower takes each stable series from the changes feed of
    # every Orthanc listed (credentials, if any, are the same for all); it starts at
    # the feed's end unless told to take what the server already holds, and may
    # delete a series from its source once the relay has it DONE. The collector asks
    # the PACS by C-FIND and retrieves to this relay's SCP by C-MOVE (or by C-GET on
    # the same association); its request rate and the retrievals it runs at once are
    # bounded so a clinical PACS never feels it.
    follow_orthanc_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    follow_orthanc_username: str | None = None
    follow_orthanc_password: SecretStr | None = None
    follow_poll_interval: float = Field(5.0, gt=0)
    follow_batch: int = Field(100, ge=1, le=10_000)
    follow_from_start: bool = False
    follow_delete_after_done: bool = False
    pacs_host: str | None = None
    pacs_port: int = Field(104, ge=1, le=65535)
    pacs_ae_title: str = Field("PACS", min_length=1, max_length=16)
    pacs_retrieve: str = Field("move", pattern=r"^(move|get)$")
    pacs_timeout: float = Field(60.0, gt=0)
    collect_rate: float = Field(2.0, gt=0)
    collect_max_concurrent: int = Field(2, ge=1, le=64)
    collect_poll_interval: float = Field(2.0, gt=0)
    # A retrieved row whose series have not all reached DONE by then is FAILED.
    collect_done_timeout: float = Field(3600.0, gt=0)
    _split_follow = field_validator("follow_orthanc_urls", mode="before")(_split_commas)

    # Research projects: a `version: 1` YAML file that routes each series to a project
    # (its own de-identification, key and destinations; see docs/projects.md). Without
    # it, one implicit project `default` built from these settings takes every series.
    # A project with `dispatch: study` sends a study once no series of it has arrived
    # or changed for the study stable age.
    projects: Path | None = None
    study_stable_age: float = Field(300.0, gt=0)

    # Google Cloud Storage destination. Credentials are found the way Google's libraries
    # find them (GOOGLE_APPLICATION_CREDENTIALS, workload identity); the endpoint
    # override is for an emulator, which is spoken to without credentials.
    gcs_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
    gcs_prefix: str = Field("", pattern=r"^[A-Za-z0-9._/-]*$")
    gcs_format: GcsFormat = GcsFormat.DICOM
    gcs_sidecar_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SIDECAR_FIELDS))
    gcs_endpoint: str | None = Field(None, pattern=r"^https?://")

    _split_gcs = field_validator("gcs_sidecar_fields", mode="before")(_split_commas)

    @field_validator("gcs_sidecar_fields")
    @classmethod
    def _known_keywords(cls, value: list[str]) -> list[str]:
        for keyword in value:
            tag = tag_for_keyword(keyword)
            if tag is None or dictionary_VR(tag) == "SQ":
                raise ValueError(f"{keyword} is not a DICOM keyword of a plain attribute")
        return value

    # Webhooks: RELAY_WEBHOOKS is a JSON list of {"name", "url", "events"} (events default
    # to all). Each is signed with its own secret from RELAY_WEBHOOK_SECRETS (a JSON
    # object, hook name to secret) or else with RELAY_WEBHOOK_SECRET; both can be files
    # in RELAY_SECRETS_DIR. Failed deliveries are retried with doubling delay up to the
    # cap, and after the last attempt wait, visible in the API, for a person's retry.
    webhooks: Annotated[list[Webhook], NoDecode] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    webhook_timeout: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(12, ge=1, le=1000)
    webhook_retry_base_delay: float = Field(5.0, gt=0)
    webhook_retry_max_delay: float = Field(3600.0, gt=0)
    webhook_poll_interval: float = Field(2.0, gt=0)
    # Delivered notifications are kept this long for the API, then deleted.
    webhook_retain_days: float = Field(30.0, ge=0)

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks_json(cls, value: object) -> object:
        return cls._json_setting(value, [])

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _webhook_secrets_json(cls, value: object) -> object:
        return cls._json_setting(value, {})

    @staticmethod
    def _json_setting(value: object, empty: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():  # set but empty: none
            return empty
        try:
            return json.loads(value)
        except ValueError:
            # The value itself is not repeated: RELAY_WEBHOOK_SECRETS holds secrets.
            raise ValueError("is not valid JSON") from None

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        names = [hook.name for hook in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("RELAY_WEBHOOKS names a hook twice")
        for name in names:
            if self.webhook_secret_for(name) is None:
                raise ValueError(f"webhook {name} has no secret: set RELAY_WEBHOOK_SECRET, "
                                 f"or RELAY_WEBHOOK_SECRETS with an entry for it")
        plain = [h.name for h in self.webhooks if not h.url.startswith("https://")]
        if plain and self.env is Environment.PRODUCTION:
            raise ValueError(f"webhooks {plain} are not https://: their bodies hold "
                             f"pseudonyms, which go over HTTPS in production")
        if unknown := set(self.webhook_secrets) - set(names):
            raise ValueError(f"RELAY_WEBHOOK_SECRETS names no such hook: {sorted(unknown)}")
        return self

    def webhook_secret_for(self, name: str) -> bytes | None:
        secret = self.webhook_secrets.get(name) or self.webhook_secret
        return secret.get_secret_value().encode() if secret else None

    _split = field_validator("api_tokens", "deid_options", "identifier_keys",
                             "deid_local_coding_schemes", mode="before")(_split_commas)
    _split_network = field_validator("scp_allowed_aes", "scp_allowed_hosts",
                                     mode="before")(_split_commas)

    @field_validator("destinations", mode="before")
    @classmethod
    def _split_destinations(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("amqp_url")
    @classmethod
    def _known_broker(cls, value: str | None) -> str | None:
        # The nodes of a cluster may be listed, comma separated.
        urls = [part.strip() for part in (value or "").split(",")]
        if value and not all(url.startswith(("amqp://", "amqps://")) for url in urls):
            raise ValueError("must be an amqp:// or amqps:// URL, or a comma list of them")
        return value

    @model_validator(mode="after")
    def _fill_paths_and_check(self) -> Settings:
        for name in ("incoming", "work", "quarantine", "outbox", "staging"):
            if getattr(self, f"{name}_dir") is None:
                setattr(self, f"{name}_dir", self.data_dir / name)
        if self.destinations is None:
            self.destinations = [Destination.ORTHANC] if self.orthanc_url else [Destination.OUTBOX]
            if self.gcs_bucket:
                self.destinations.append(Destination.GCS)
        if Destination.ORTHANC in self.destinations and not self.orthanc_url:
            raise ValueError("RELAY_DESTINATIONS names orthanc but RELAY_ORTHANC_URL is not set")
        return self

    @model_validator(mode="after")
    def _check_network_destinations(self) -> Settings:
        if Destination.DICOM in (self.destinations or []) and not self.dicom_host:
            raise ValueError("RELAY_DESTINATIONS names dicom but RELAY_DICOM_HOST is not set")
        if Destination.DICOMWEB in (self.destinations or []) and not self.dicomweb_url:
            raise ValueError("RELAY_DESTINATIONS names dicomweb but RELAY_DICOMWEB_URL is not set")
        if Destination.GCS in (self.destinations or []) and not self.gcs_bucket:
            raise ValueError("RELAY_DESTINATIONS names gcs but RELAY_GCS_BUCKET is not set")
        return self

    # Hardening: the PHI debug log (off: its lines may quote patient data), the api's
    # request limits and Swagger page (None: on in development, off in production), and
    # the named exceptions a production site accepts on purpose (relay_shared.production).
    log_phi_debug: bool = False
    api_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    api_request_timeout: float = Field(60.0, gt=0)
    api_docs: bool | None = None
    allow_insecure: Annotated[list[Insecure], NoDecode] = Field(default_factory=list)
    _split_insecure = field_validator("allow_insecure", mode="before")(_split_commas)

    @model_validator(mode="after")
    def _refuse_unsafe_in_production(self) -> Settings:
        refusals = global_refusals(self) if self.production else []
        if refusals:
            raise ValueError("; ".join(str(r) for r in refusals))
        return self

    @property
    def production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def deid_secret_given(self) -> bool:
        return self.deid_secret.get_secret_value() != DEVELOPMENT_SECRET

    @property
    def api_docs_enabled(self) -> bool:
        return not self.production if self.api_docs is None else self.api_docs

    # S3 and S3-compatible storage (MinIO, Ceph: set the endpoint), in the layouts and
    # formats of the GCS destination. Keys from RELAY_S3_ACCESS_KEY_ID and
    # RELAY_S3_SECRET_ACCESS_KEY (files in RELAY_SECRETS_DIR, like every secret), or
    # without them from the AWS credential chain (environment, shared files, an instance
    # or pod role). A bucket set with no RELAY_DESTINATIONS adds s3 to the defaults.
    s3_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_prefix: str = Field("", pattern=r"^[A-Za-z0-9._/-]*$")
    s3_region: str | None = Field(None, pattern=r"^[a-z0-9-]{1,32}$")
    s3_endpoint: str | None = Field(None, pattern=r"^https?://")
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_format: GcsFormat = GcsFormat.DICOM
    s3_sidecar_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SIDECAR_FIELDS))

    _split_s3 = field_validator("s3_sidecar_fields", mode="before")(_split_commas)

    @field_validator("s3_sidecar_fields")
    @classmethod
    def _known_s3_keywords(cls, value: list[str]) -> list[str]:
        return cls._known_keywords(value)

    @model_validator(mode="wrap")
    @classmethod
    def _check_s3(cls, data: object, handler: ModelWrapValidatorHandler[Settings]
                  ) -> Settings:
        self = handler(data)
        # Only a list nobody set gains s3; the defaults are filled in by then.
        named = isinstance(data, dict) and data.get("destinations") is not None
        if self.s3_bucket and not named and self.destinations is not None \
                and Destination.S3 not in self.destinations:
            self.destinations.append(Destination.S3)
        if Destination.S3 in (self.destinations or []) and not self.s3_bucket:
            raise ValueError("RELAY_DESTINATIONS names s3 but RELAY_S3_BUCKET is not set")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("RELAY_S3_ACCESS_KEY_ID and RELAY_S3_SECRET_ACCESS_KEY go "
                             "together")
        return self

    # DICOMweb archives that want a bearer token: a fixed one, or OAuth2 client
    # credentials (the token fetched from the endpoint, cached, renewed). One way in per
    # archive: these or RELAY_DICOMWEB_USERNAME. Secrets may be files in RELAY_SECRETS_DIR.
    dicomweb_token: SecretStr | None = None
    dicomweb_token_url: str | None = Field(None, pattern=r"^https?://")
    dicomweb_client_id: str | None = None
    dicomweb_client_secret: SecretStr | None = None
    dicomweb_scope: str | None = None

    @model_validator(mode="after")
    def _check_dicomweb_auth(self) -> Settings:
        ways = [name for name, value in (("RELAY_DICOMWEB_USERNAME", self.dicomweb_username),
                                         ("RELAY_DICOMWEB_TOKEN", self.dicomweb_token),
                                         ("RELAY_DICOMWEB_TOKEN_URL", self.dicomweb_token_url))
                if value]
        if len(ways) > 1:
            raise ValueError(f"{' and '.join(ways)} are set: choose one way to sign in")
        if self.dicomweb_token_url and not (self.dicomweb_client_id
                                            and self.dicomweb_client_secret):
            raise ValueError("RELAY_DICOMWEB_TOKEN_URL needs RELAY_DICOMWEB_CLIENT_ID and "
                             "RELAY_DICOMWEB_CLIENT_SECRET")
        if self.env is Environment.PRODUCTION and self.dicomweb_token_url and \
                not self.dicomweb_token_url.startswith("https://"):
            raise ValueError("RELAY_DICOMWEB_TOKEN_URL must be https:// in production: the "
                             "client secret goes to it")
        return self

    # The transfer syntaxes the default project's destinations take, in order of
    # preference (a projects file sets them per destination): an instance in another is
    # transcoded losslessly, a lossy one is never transcoded and fails at that destination.
    transfer_syntax: Annotated[list[str], NoDecode] = Field(default_factory=list)
    _split_syntaxes = field_validator("transfer_syntax", mode="before")(_split_commas)

    @field_validator("transfer_syntax")
    @classmethod
    def _known_syntaxes(cls, value: list[str]) -> list[str]:
        return check_transfer_syntaxes(value) if value else value

    # How the dicom destination proves receipt: a C-FIND at IMAGE level, or storage
    # commitment (N-ACTION, then the AE's N-EVENT-REPORT to the listener here, where the
    # AE must know RELAY_DICOM_CALLING_AE_TITLE; plain DICOM only).
    dicom_verify: str = Field("find", pattern=r"^(find|commitment)$")
    dicom_commitment_host: str = "127.0.0.1"
    dicom_commitment_port: int = Field(11113, ge=1, le=65535)
    dicom_commitment_timeout: float = Field(120.0, gt=0)

    @model_validator(mode="after")
    def _check_dicom_commitment(self) -> Settings:
        if self.dicom_verify == "commitment" and self.dicom_tls:
            raise ValueError("RELAY_DICOM_VERIFY=commitment listens for the AE's reports "
                             "in plain DICOM; it cannot be combined with RELAY_DICOM_TLS")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'relay.db').resolve()}"

    @property
    def deid_queue(self) -> str:
        return f"{self.queue_prefix}.deid"

    @property
    def send_queue(self) -> str:
        return f"{self.queue_prefix}.send"

    def ensure_dirs(self) -> None:
        for path in (self.incoming_dir, self.work_dir, self.quarantine_dir, self.outbox_dir,
                     self.staging_dir):
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)


class SettingsError(Exception):
    """Raised with a message that names each RELAY_ variable that is wrong."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment and, for secrets mounted as files
    (Kubernetes Secrets), from RELAY_SECRETS_DIR: a file named like the variable
    (RELAY_DEID_SECRET, ...) holds its value."""
    secrets_dir = os.environ.get("RELAY_SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise SettingsError(f"RELAY_SECRETS_DIR: {secrets_dir} is not a directory")
    try:
        return Settings(_secrets_dir=secrets_dir, **overrides)  # type: ignore[arg-type,call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            name = f"RELAY_{field.upper()}" if field else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
