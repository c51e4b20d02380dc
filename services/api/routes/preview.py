"""`POST /api/v1/preview`: a project's profile tried on uploaded files, for an admin.

Nothing is stored or sent: the uploads and their de-identified copies live in a
scratch folder removed before the answer leaves. The body is bounded like every
request (RELAY_API_MAX_BODY_BYTES). The answer holds the files' values, before and
after, so it is for admins only, and each preview is recorded as an admin read.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from relay_api.audit import audit_read
from relay_api.deps import Admin, RuntimeDep, SessionDep
from relay_api.schemas import problem_responses
from relay_shared.deid import DeidConfig, DeidConfigError, Pseudonymizer
from relay_shared.guard import load_rules
from relay_shared.preview import FilePreview, Profile, preview
from relay_shared.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["preview"])
MAX_FILES = 200
NAME_LENGTH = 255


class AttributeOut(BaseModel):
    path: str
    keyword: str
    vr: str
    action: str
    code: str
    outcome: str
    original: str | None
    result: str | None


class FilePreviewOut(BaseModel):
    file: str
    error: str | None
    guard: list[str]
    passes_guard: bool
    attributes: list[AttributeOut]


class PreviewOut(BaseModel):
    project: str
    options: list[str]
    recipe_version: str | None
    recipe_sha256: str | None
    files: list[FilePreviewOut]


@router.post("/preview", response_model=PreviewOut,
             responses={**problem_responses(404, 422),
                        400: {"description": "The body is not multipart/form-data"}})
async def preview_files(rt: RuntimeDep, session: SessionDep, caller: Admin,
                        files: Annotated[list[UploadFile], File(
                            description="DICOM files (multipart/form-data)")],
                        project: Annotated[str | None, Query(max_length=40)] = None
                        ) -> PreviewOut:
    if len(files) > MAX_FILES:
        raise HTTPException(422, f"at most {MAX_FILES} files at once")
    name, profile = _profile(rt, project)
    results = await run_in_threadpool(_run, rt, files, profile)
    audit_read(session, caller, f"preview of {len(files)} uploaded file(s) under project "
                                f"{name}")
    recipe = profile.config.recipe
    return PreviewOut(project=name, options=sorted(profile.config.options),
                      recipe_version=recipe.version if recipe else None,
                      recipe_sha256=recipe.sha256 if recipe else None,
                      files=[_out(r) for r in results])


def _profile(rt: Runtime, project: str | None) -> tuple[str, Profile]:
    projects = rt.projects.current
    name = project or next(iter(projects.projects))
    chosen = projects.project(name)
    if chosen is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no project {name} in force")
    deid = chosen.deid
    try:
        config = DeidConfig.from_settings(list(deid.options),
                                          str(deid.recipe) if deid.recipe else None)
    except DeidConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return name, Profile(config, Pseudonymizer(deid.secret.encode(), deid.key_id),
                         load_rules(rt.settings.guard_id_patterns))


def _run(rt: Runtime, files: list[UploadFile], profile: Profile) -> list[FilePreview]:
    work = rt.settings.work_dir
    # Beside the work store when it is there: the files are patient data like its own.
    with tempfile.TemporaryDirectory(prefix="preview-", dir=work if work and work.is_dir()
                                     else None) as scratch:
        named = []
        for number, upload in enumerate(files):
            path = Path(scratch) / "uploads" / f"{number}.dcm"
            path.parent.mkdir(exist_ok=True)
            with open(path, "wb") as out:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, out)
            named.append(((upload.filename or f"file {number + 1}")[:NAME_LENGTH], path))
        return preview(named, profile, Path(scratch) / "outputs", values=True)


def _out(result: FilePreview) -> FilePreviewOut:
    return FilePreviewOut(
        file=result.name, error=result.error, guard=result.guard,
        passes_guard=result.passes_guard,
        attributes=[AttributeOut(path=a.path, keyword=a.keyword, vr=a.vr, action=a.action,
                                 code=a.code, outcome=a.outcome, original=a.before,
                                 result=a.after) for a in result.attributes])
