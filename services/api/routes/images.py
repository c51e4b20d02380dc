from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import col, select

from relay_api import queries
from relay_api.deps import Id, Offset, Reader, SessionDep
from relay_api.schemas import ImageOut, Page
from relay_shared.models import Image, Status

router = APIRouter(prefix="/api/v1/images", tags=["images"])


@router.get("", response_model=Page[ImageOut])
def list_images(
    session: SessionDep, _: Reader,
    series_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[ImageOut]:
    query = select(Image)
    if series_id is not None:
        query = query.where(Image.series_id == series_id)
    if status_filter is not None:
        query = query.where(Image.status == status_filter)
    total = queries.total_of(session, query)
    rows = session.exec(query.order_by(col(Image.id)).offset(offset).limit(limit))
    return Page(items=queries.images_out(session, list(rows)), total=total, limit=limit,
                offset=offset)


@router.get("/{image_id}", response_model=ImageOut,
            responses={404: {"description": "No such image"}})
def get_image(image_id: Id, session: SessionDep, _: Reader) -> ImageOut:
    image = session.get(Image, image_id)
    if image is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"image {image_id} does not exist")
    [found] = queries.images_out(session, [image])
    return found
