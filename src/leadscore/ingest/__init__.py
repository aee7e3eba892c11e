"""Ingest: read files, validate and normalise records into leads and events."""

from leadscore.ingest.files import (
    EventStats,
    atomic_path,
    file_format,
    iter_records,
    read_events,
    read_leads,
    write_csv,
    write_rows,
)
from leadscore.ingest.normalise import RecordError, clean_value, make_attributes, make_event, nfc

__all__ = [
    "EventStats",
    "RecordError",
    "atomic_path",
    "clean_value",
    "file_format",
    "iter_records",
    "make_attributes",
    "make_event",
    "nfc",
    "read_events",
    "read_leads",
    "write_csv",
    "write_rows",
]
