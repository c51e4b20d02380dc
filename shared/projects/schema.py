"""The projects file as data: every key it may hold, and nothing else.

Secrets are never written in the file: a key ending in ``_env`` names an
environment variable (or a file of that name in RELAY_SECRETS_DIR) that holds
the value; the loader resolves it at start and refuses the file if it is missing.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydicom.datadict import dictionary_VR, tag_for_keyword

from relay_shared.dicom.syntaxes import check_transfer_syntaxes
from relay_shared.review import DEFAULT_ONE_IN, ReviewMode

PROJECT_NAME = r"^[a-z0-9-]{1,40}$"
# Each destination's name is what the deliveries of an image are recorded under.
DESTINATION_NAME = r"^[a-z0-9-]{1,32}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
AE_TITLE = r"^[\x20-\x5b\x5d-\x7e]{1,16}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(StrEnum):
    SCP = "scp"
    FOLDER = "folder"
    FOLLOW = "follow"
    COLLECT = "collect"


class Action(StrEnum):
    SEND = "send"
    DROP = "drop"
    HOLD = "hold"


class Dispatch(StrEnum):
    SERIES = "series"
    STUDY = "study"


def _as_list(value: object) -> object:
    """`source: scp` reads as well as `source: [scp]`."""
    return [value] if isinstance(value, str | int | float) else value


Scalar = str | int | float


class Condition(Strict):
    """One test on one attribute of the series' first instance. All given must hold."""

    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    regex: str | None = None
    not_regex: str | None = None
    min: float | None = None
    max: float | None = None
    present: bool | None = None

    @field_validator("regex", "not_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _says_something(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a condition needs one of equals, in, regex, not_regex, min, "
                             "max, present")
        if self.present is False and len(self.model_fields_set) > 1:
            raise ValueError("present: false cannot be combined with a test of the value")
        return self


def _check_keyword(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword")
    if dictionary_VR(tag) == "SQ":
        raise ValueError(f"{keyword} is a sequence: conditions test plain attributes")
    return keyword


class Match(Strict):
    source: Annotated[list[Source] | None, Field(min_length=1)] = None
    calling_ae: Annotated[list[Annotated[str, Field(pattern=AE_TITLE)]] | None,
                          Field(min_length=1)] = None
    incoming_subdir: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]]
                               | None, Field(min_length=1)] = None
    header: dict[Annotated[str, AfterValidator(_check_keyword)], Condition] = Field(
        default_factory=dict)

    _lists = field_validator("source", "calling_ae", "incoming_subdir", mode="before")(_as_list)


class DeidSection(Strict):
    """What the project sets of the de-identification; the rest comes from RELAY_DEID_*."""

    options: list[str] | None = None
    recipe: Path | None = None
    key_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    secret_env: str | None = Field(None, pattern=ENV_NAME)


class IdentifiersSection(Strict):
    url: str = Field(pattern=r"^https?://")
    token_env: str | None = Field(None, pattern=ENV_NAME)
    timeout: float = Field(10.0, gt=0)


class PixelsSection(Strict):
    rules: Path | None = None
    ocr: bool | None = None


class ReviewSection(Strict):
    """A person approves each series (all) or a keyed sample of them before it is sent."""

    mode: ReviewMode
    one_in: int = Field(DEFAULT_ONE_IN, ge=1, le=1_000_000)

    @field_validator("mode", mode="before")
    @classmethod
    def _off_unquoted(cls, value: object) -> object:
        # YAML reads an unquoted `off` as false.
        return ReviewMode.OFF if value is False else value


class Project(Strict):
    name: str = Field(pattern=PROJECT_NAME)
    match: Match = Field(default_factory=Match)
    action: Action = Action.SEND
    deid: DeidSection | None = None
    identifiers: IdentifiersSection | None = None
    pixels: PixelsSection | None = None
    review: ReviewSection | None = None
    destinations: list[Annotated[str, Field(pattern=DESTINATION_NAME)]] = Field(
        default_factory=list)
    dispatch: Dispatch = Dispatch.SERIES

    @model_validator(mode="after")
    def _sends_somewhere(self) -> Project:
        if self.action is Action.SEND and not self.destinations:
            raise ValueError("a project that sends needs at least one destination")
        return self


class _Sent(Strict):
    """What every destination may say of the encodings it takes: transfer syntax UIDs
    in order of preference (instances in another are transcoded losslessly, never
    lossily); none given, instances go as they are."""

    transfer_syntax: list[str] | None = None

    _syntaxes = field_validator("transfer_syntax", mode="before")(_as_list)

    @field_validator("transfer_syntax")
    @classmethod
    def _known_syntaxes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_transfer_syntaxes(value)


class OutboxDestination(_Sent):
    kind: Literal["outbox"]
    path: Path


class _HttpAccount(_Sent):
    url: str = Field(pattern=r"^https?://")
    username: str | None = None
    password_env: str | None = Field(None, pattern=ENV_NAME)


class OrthancDestination(_HttpAccount):
    kind: Literal["orthanc"]


class DicomDestination(_Sent):
    kind: Literal["dicom"]
    host: str = Field(min_length=1)
    port: int = Field(104, ge=1, le=65535)
    ae_title: str = Field("ANY-SCP", pattern=AE_TITLE)
    calling_ae_title: str = Field("RELAY", pattern=AE_TITLE)
    timeout: float = Field(30.0, gt=0)
    # find: C-FIND at IMAGE level; commitment: storage commitment, reported to the
    # listener of RELAY_DICOM_COMMITMENT_HOST/PORT.
    verify: Literal["find", "commitment"] = "find"


class DicomwebDestination(_HttpAccount):
    kind: Literal["dicomweb"]
    # One way to sign in: username/password_env, a fixed token, or OAuth2 client credentials.
    token_env: str | None = Field(None, pattern=ENV_NAME)
    token_url: str | None = Field(None, pattern=r"^https?://")
    client_id: str | None = None
    client_secret_env: str | None = Field(None, pattern=ENV_NAME)
    scope: str | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> DicomwebDestination:
        ways = [way for way in (self.username, self.token_env, self.token_url) if way]
        if len(ways) > 1:
            raise ValueError("choose one way to sign in: username, token_env or token_url")
        if self.token_url and not (self.client_id and self.client_secret_env):
            raise ValueError("token_url needs client_id and client_secret_env")
        return self


class _Bucket(_Sent):
    """What the bucket destinations share: the layout and formats of the objects."""

    prefix: str = Field("", pattern=r"^[A-Za-z0-9._/-]*$")
    format: Literal["dicom", "nifti"] = "dicom"
    sidecar_fields: list[str] | None = None

    @field_validator("sidecar_fields")
    @classmethod
    def _keywords(cls, value: list[str] | None) -> list[str] | None:
        for keyword in value or []:
            _check_keyword(keyword)
        return value

    @model_validator(mode="after")
    def _syntax_of_files(self) -> _Bucket:
        if self.transfer_syntax and self.format == "nifti":
            raise ValueError("transfer_syntax applies to DICOM files; a NIfTI volume has none")
        return self


class GcsDestination(_Bucket):
    kind: Literal["gcs"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


class S3Destination(_Bucket):
    kind: Literal["s3"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str | None = Field(None, pattern=r"^[a-z0-9-]{1,32}$")
    endpoint: str | None = Field(None, pattern=r"^https?://")
    # Without both, the AWS credential chain (environment, shared files, a pod role).
    access_key_id_env: str | None = Field(None, pattern=ENV_NAME)
    secret_access_key_env: str | None = Field(None, pattern=ENV_NAME)

    @model_validator(mode="after")
    def _keys_together(self) -> S3Destination:
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("access_key_id_env and secret_access_key_env go together")
        return self


DestinationConfig = Annotated[
    OutboxDestination | OrthancDestination | DicomDestination | DicomwebDestination
    | GcsDestination | S3Destination, Field(discriminator="kind")]


class ProjectsFile(Strict):
    version: Literal[1]
    destinations: dict[Annotated[str, Field(pattern=DESTINATION_NAME)], DestinationConfig] = \
        Field(default_factory=dict)
    projects: list[Project] = Field(min_length=1)
