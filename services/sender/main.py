"""sender: consume de-identified series ids, deliver them, verify, clean up."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from relay_sender.commitment import CommittedDicomDestination
from relay_sender.destinations import Destination, FolderDestination
from relay_sender.dicom_ae import DicomDestination
from relay_sender.dicomweb import DicomWebDestination
from relay_sender.gcs import GcsDestination, make_client
from relay_sender.handlers import SendContext
from relay_sender.manifests import ManifestWriter
from relay_sender.orthanc import OrthancDestination
from relay_sender.projects import ProjectSenders, dispatch_studies
from relay_sender.s3 import S3Destination, s3_verify
from relay_sender.transcode import TranscodingDestination
from relay_shared import tlsconfig
from relay_shared.manifest import relay_version
from relay_shared.models import Stage
from relay_shared.runtime import Runtime, consume_until_stopped
from relay_shared.settings import Destination as DestinationName
from relay_shared.settings import GcsFormat, Settings
from relay_shared.signing import signing_key_for


def _revealed(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret else None


def build_destinations(settings: Settings, engine: Engine | None = None) -> list[Destination]:
    built: list[Destination] = []
    for name in settings.destinations or []:
        if name is DestinationName.OUTBOX:
            assert settings.outbox_dir is not None
            built.append(FolderDestination(settings.outbox_dir))
        elif name is DestinationName.ORTHANC:
            assert settings.orthanc_url is not None
            built.append(OrthancDestination(settings.orthanc_url, settings.orthanc_username,
                                            _revealed(settings.orthanc_password),
                                            settings.http_timeout,
                                            concurrency=settings.send_concurrency,
                                            verify=tlsconfig.http_verify(settings)))
        elif name is DestinationName.DICOM and settings.dicom_verify == "commitment":
            built.append(committed_dicom_destination(settings))
        elif name is DestinationName.DICOM:
            assert settings.dicom_host is not None
            built.append(DicomDestination(settings.dicom_host, settings.dicom_port,
                                          settings.dicom_ae_title,
                                          settings.dicom_calling_ae_title, settings.dicom_timeout,
                                          tlsconfig.dicom_client_factory(settings,
                                                                         settings.dicom_host),
                                          concurrency=settings.send_concurrency))
        elif name is DestinationName.DICOMWEB:
            assert settings.dicomweb_url is not None
            built.append(DicomWebDestination(
                settings.dicomweb_url, settings.dicomweb_username,
                _revealed(settings.dicomweb_password), settings.http_timeout,
                verify=tlsconfig.http_verify(settings),
                token=_revealed(settings.dicomweb_token),
                token_url=settings.dicomweb_token_url, client_id=settings.dicomweb_client_id,
                client_secret=_revealed(settings.dicomweb_client_secret),
                scope=settings.dicomweb_scope, concurrency=settings.send_concurrency))
        elif name is DestinationName.GCS:
            assert settings.gcs_bucket is not None
            # The engine lets it keep the searchable metadata subset of what it sent.
            built.append(GcsDestination(make_client(settings.gcs_endpoint), settings.gcs_bucket,
                                        settings.gcs_prefix, settings.gcs_format,
                                        settings.gcs_sidecar_fields, engine,
                                        settings.http_timeout))
        elif name is DestinationName.S3:
            built.append(s3_destination(settings, engine))
    return [_in_allowed_syntaxes(d, settings) for d in built]


def _in_allowed_syntaxes(destination: Destination, settings: Settings) -> Destination:
    """RELAY_TRANSFER_SYNTAX, for every destination that sends DICOM files."""
    volumes = (destination.name == "gcs" and settings.gcs_format is GcsFormat.NIFTI) or \
        (destination.name == "s3" and settings.s3_format is GcsFormat.NIFTI)
    if not settings.transfer_syntax or volumes:
        return destination
    return TranscodingDestination(destination, settings.transfer_syntax)


def committed_dicom_destination(settings: Settings) -> CommittedDicomDestination:
    assert settings.dicom_host is not None
    return CommittedDicomDestination(
        settings.dicom_host, settings.dicom_port, settings.dicom_ae_title,
        settings.dicom_calling_ae_title, settings.dicom_timeout,
        listen_host=settings.dicom_commitment_host, listen_port=settings.dicom_commitment_port,
        commitment_timeout=settings.dicom_commitment_timeout)


def s3_destination(settings: Settings, engine: Engine | None) -> S3Destination:
    assert settings.s3_bucket is not None
    return S3Destination(settings.s3_bucket, settings.s3_prefix, region=settings.s3_region,
                         endpoint=settings.s3_endpoint,
                         access_key_id=_revealed(settings.s3_access_key_id),
                         secret_access_key=_revealed(settings.s3_secret_access_key),
                         fmt=settings.s3_format, fields=settings.s3_sidecar_fields,
                         engine=engine, timeout=settings.http_timeout,
                         verify=s3_verify(settings))


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    tlsconfig.warn_if_unverified(rt.settings, "sender")
    key = signing_key_for(rt.settings)
    ctx = SendContext(rt.engine, rt.store, build_destinations(rt.settings, rt.engine),
                      ManifestWriter(rt.engine, key, relay_version()) if key else None)
    senders = ProjectSenders(ctx, rt.projects, rt.settings)
    dispatcher = asyncio.create_task(dispatch_studies(senders, stop))
    await consume_until_stopped(rt, stop, rt.settings.send_queue, senders.send, Stage.SEND)
    await dispatcher
