"""The MetaData every read table and tracking table belongs to (alembic's target)."""

from sqlalchemy import MetaData

metadata = MetaData()
