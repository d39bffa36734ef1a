"""Query routes (read side): placeholder until the read models land."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
