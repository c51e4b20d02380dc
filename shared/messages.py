"""What travels on the bus: ids, never images or identifying values."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


class SeriesMessage(BaseModel):
    schema_version: Literal[1] = 1
    series_id: int
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> SeriesMessage:
        return cls.model_validate_json(body)
