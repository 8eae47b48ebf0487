"""Storage: database, ORM models, the call repository (event log, CDR) and migrations."""

from app.storage import auth_models  # noqa: F401  (registers the access-control tables)
from app.storage.db import Database
from app.storage.errors import CallNotFoundError, DatabaseUnavailableError, StorageError
from app.storage.repository import INTERRUPTED, CallRepository
from app.storage.schemas import (
    CallDetail,
    CallPage,
    Cdr,
    EventOut,
    RecordingOut,
    SentimentPoint,
    TurnOut,
)

__all__ = [
    "INTERRUPTED",
    "CallDetail",
    "CallNotFoundError",
    "CallPage",
    "CallRepository",
    "Cdr",
    "Database",
    "DatabaseUnavailableError",
    "EventOut",
    "RecordingOut",
    "SentimentPoint",
    "StorageError",
    "TurnOut",
]
