"""Every table schema, record type and the run config, in one place."""

from mrtcurate.schemas.config import RunConfig, build_config, load_yaml
from mrtcurate.schemas.reasons import DropReason, RejectReason
from mrtcurate.schemas.records import (
    Candidate,
    ContextTurns,
    FileSplit,
    InputFile,
    Message,
    Reject,
    ShardInfo,
    TreeMessage,
)
from mrtcurate.schemas.tables import DROPPED_SCHEMA, MANIFEST_SCHEMA_VERSION, REJECTS_SCHEMA, curated_schema

__all__ = [
    "DROPPED_SCHEMA",
    "MANIFEST_SCHEMA_VERSION",
    "REJECTS_SCHEMA",
    "Candidate",
    "ContextTurns",
    "DropReason",
    "FileSplit",
    "InputFile",
    "Message",
    "Reject",
    "RejectReason",
    "RunConfig",
    "ShardInfo",
    "TreeMessage",
    "build_config",
    "curated_schema",
    "load_yaml",
]
