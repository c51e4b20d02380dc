"""Signed manifests of delivered series, and the public key they are checked with.

A destination that holds files (outbox, GCS, S3) has the manifest beside the data; for
the others (Orthanc, a DICOM AE, DICOMweb) it is downloaded here. It carries
de-identified values only, and the id of the pseudonym key (never the key), like the
files it describes.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel
from sqlmodel import select

from relay_api.deps import Id, Reader, SessionDep
from relay_api.schemas import problem_responses
from relay_shared.manifest import MANIFEST_NAME
from relay_shared.models import SeriesManifest
from relay_shared.signing import ALGORITHM, key_id_of, public_pem, raw_public

router = APIRouter(prefix="/api/v1", tags=["provenance"])


class SigningKeyOut(BaseModel):
    algorithm: str
    key_id: str  # SHA-256 (hex) of the raw 32-byte public key
    public_key: str  # the raw 32 bytes, base64
    public_key_pem: str
    derived: bool  # derived from the deid secret: a development relay's key


@router.get("/series/{series_id}/manifest", responses={
    **problem_responses(404),
    200: {"content": {"application/json": {}},
          "description": "The signed manifest, byte for byte as placed beside the data"}})
def series_manifest(series_id: Id, session: SessionDep, _: Reader) -> Response:
    row = session.exec(select(SeriesManifest).where(
        SeriesManifest.series_id == series_id)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"series {series_id} has no manifest: it is not delivered yet, "
                            "or manifests are off (RELAY_MANIFESTS)")
    return Response(row.content.encode(), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{series_id}-{MANIFEST_NAME}"'})


@router.get("/signing-key", response_model=SigningKeyOut, responses=problem_responses(404))
def signing_key(request: Request, _: Reader) -> SigningKeyOut:
    found = request.app.state.signing_key  # read and checked at start (main.create_app)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "manifests are off (RELAY_MANIFESTS=false): nothing is signed")
    public, derived = found
    return SigningKeyOut(algorithm=ALGORITHM, key_id=key_id_of(public),
                         public_key=base64.b64encode(raw_public(public)).decode(),
                         public_key_pem=public_pem(public), derived=derived)
