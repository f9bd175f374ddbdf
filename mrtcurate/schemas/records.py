"""The records that flow between pipeline stages, as plain frozen dataclasses. Pickling them is not cheap: the
shuffled ones cross with the compact coders of pipeline/coders.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Candidate:
    """One response to one prompt. After exact dedup, `multiplicity` counts the copies it stands for."""

    prompt_id: str
    response_id: str
    prompt: str
    completion: str
    reward: float | None  # oriented so that larger is better (--reward-order lower negates); rows write it as given
    source: str
    messages: tuple[Message, ...] | None = None
    multiplicity: int = 1
    feature: tuple[float, ...] | None = None  # --feature-column: the planner's per-response vector
    # Where each record it stands for was read, sorted: (input file index, file part, row within the part), made a
    # file and row by `RecordLocator`. Empty for a candidate not read from the job's inputs (the explorer's).
    origins: tuple[Origin, ...] = ()

    def merged_with(self, other: Candidate) -> Candidate:
        return merged_copies([self, other])

    def rejected(self, reason: str, detail: str, locator: RecordLocator) -> list[Reject]:
        """One reject per record this candidate stands for, each holding its prompt and response as JSON, and
        where the record was read when that is known (else the candidate's source label, no row)."""
        record = json.dumps({"prompt": self.prompt, "response": self.completion}, ensure_ascii=False)
        if len(self.origins) != self.multiplicity:
            return [Reject(record, reason, detail, self.source, None)] * self.multiplicity
        return [Reject(record, reason, detail, *locator.locate(origin)) for origin in self.origins]


def merged_copies(copies: list[Candidate]) -> Candidate:
    """Order-independent merge of copies of one response: the smallest record represents them all, the best reward
    wins, and their records' origins are sorted once. All at once, not pair by pair: a pool answered by the same
    text a hundred thousand times would otherwise copy a growing tuple of origins at every merge."""
    if len(copies) == 1:
        return copies[0]
    representative = min(copies, key=_representative_order)
    rewards = [copy.reward for copy in copies if copy.reward is not None]
    return replace(
        representative,
        reward=max(rewards) if rewards else None,
        multiplicity=sum(copy.multiplicity for copy in copies),
        origins=tuple(sorted(origin for copy in copies for origin in copy.origins)),
    )


_CANDIDATE_FIELDS = tuple(candidate_field.name for candidate_field in dataclass_fields(Candidate))


def candidate_of(values: tuple) -> Candidate:
    """A Candidate from all its field values in declaration order, as `Candidate(*values)` builds it, at half the
    cost: a frozen dataclass's __init__ sets each field through object.__setattr__ (1.5 against 0.7 us), and
    every candidate of the corpus is built this way at least twice (the read, and each decode after a shuffle)."""
    candidate = object.__new__(Candidate)
    candidate.__dict__.update(zip(_CANDIDATE_FIELDS, values, strict=True))
    return candidate


def _representative_order(candidate: Candidate) -> tuple:
    return (candidate.prompt, candidate.completion, candidate.source, candidate.messages or (), candidate.origins)


Origin = tuple[int, int, int]  # (input file index, part of the file, row within the part)


@dataclass(frozen=True)
class RecordLocator:
    """Turns a candidate's origin into the input file and row a reject row or a dropped row names. A file read in
    parts counts its rows within each part, so `rows_before` (the rows of the parts before, known once every part
    is read: pipeline/read.py) makes them count from the file's start; where no file is split it is empty."""

    files: tuple[str, ...]
    rows_before: dict = field(default_factory=dict)  # (path, part) -> rows in the file's earlier parts

    def locate(self, origin: Origin) -> tuple[str, int]:
        file_index, part, row = origin
        path = self.files[file_index]
        return path, row + self.rows_before.get((path, part), 0)

    def with_rows_before(self, rows_before: dict) -> RecordLocator:
        return RecordLocator(self.files, rows_before)


@dataclass(frozen=True)
class ContextTurns:
    """Tree layout: how many valid user and system messages of one tree were read as the prompts'
    context. They are neither candidates nor rejects, so they are counted beside the identity."""

    count: int


@dataclass(frozen=True)
class TreeMessage:
    """Tree layout, one message per row: what the join by parent id needs of a row, and what a reject
    of it must say. `fields` keeps only the keys the tree walk reads."""

    message_id: str
    parent_id: str | None
    tree_id: str | None  # --tree-id-field: the rows are grouped by it instead of joined by parent id
    fields: dict
    source: str
    record: str
    source_file: str
    source_row: int | None


@dataclass(frozen=True)
class Reject:
    record: str
    reason: str
    detail: str
    source_file: str
    source_row: int | None


# Local inputs are fingerprinted by the sha256 of their bytes; object-store inputs by the store's own
# checksum or metadata, so that the driver never downloads a corpus (ingest/files.py `checksum`).
CONTENT_CHECKSUM = "sha256:"


@dataclass(frozen=True)
class InputFile:
    """One input file as resolved on the driver: the job reads exactly these, the manifest lists them."""

    path: str
    format: str
    bytes: int
    checksum: str  # CONTENT_CHECKSUM + hex for local files, else the object store's own fingerprint
    origin: str | None = None  # hf://datasets/ORG/NAME@COMMIT/PATH for a file resolved from the Hub
    origin_checksum: str | None = None  # the Hub's own: lfs-sha256:... or git-blob:...

    @property
    def checksum_kind(self) -> str:
        return "content-sha256" if self.checksum.startswith(CONTENT_CHECKSUM) else "object-store-metadata"


@dataclass(frozen=True)
class FileSplit:
    """The part of one input file that one read task parses: JSONL lines starting in bytes [start, end),
    or Parquet row groups [start, end); `end` None is the whole file. Reject rows are counted within
    the split and made file-absolute once every split of the file is read."""

    file: InputFile
    index: int = 0
    start: int = 0
    end: int | None = None

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None


@dataclass(frozen=True)
class ShardInfo:
    path: str
    rows: int
    sha256: str
