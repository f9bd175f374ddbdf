"""pyarrow schemas of every table mrtcurate writes. Field docs live in DESIGN.md section 4."""

import pyarrow as pa

MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

_CURATED_FIELDS = [
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("completion", pa.string(), nullable=False),
    pa.field("response_id", pa.string(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("k", pa.int32(), nullable=False),
    pa.field("pool_size", pa.int32(), nullable=False),
    pa.field("multiplicity", pa.int64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    pa.field("reward", pa.float64()),
    pa.field("quality", pa.float64()),
    pa.field("selector", pa.string(), nullable=False),
    pa.field("gain", pa.float64()),
    pa.field("source", pa.string(), nullable=False),
]


def curated_schema(with_messages: bool) -> pa.Schema:
    """One row per selected response; a `messages` column only where the input was chat-formatted."""
    fields = list(_CURATED_FIELDS)
    if with_messages:
        fields.append(pa.field("messages", MESSAGES_TYPE))
    return pa.schema(fields)


REJECTS_SCHEMA = pa.schema(
    [
        pa.field("record", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_row", pa.int64()),
    ]
)

# One row per response that was parsed and not kept (lineage): with data/ and rejects/, every input record is in
# exactly one table, counted by `records`: len(data) + sum(dropped.records) + len(rejects) = input_records.
DROPPED_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("response_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # DropReason
        pa.field("records", pa.int64(), nullable=False),  # input records the row stands for
        pa.field("merged_into", pa.string()),  # duplicates: the response that stands for it
        pa.field("cosine", pa.float64()),  # near duplicates: embedding similarity to merged_into, when embedded
        pa.field("pool_rank", pa.int32()),  # not selected: rank by reward in its pool (0 = best), when rewarded
        pa.field("pool_size", pa.int32(), nullable=False),
        pa.field("reward", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_file", pa.string()),  # the input file the record was read from (null: not known)
        pa.field("source_row", pa.int64()),  # its row in that file, as rejects/ counts rows
        pa.field("completion", pa.string()),  # with --dropped-texts only
    ]
)

# 2: dropped/ rows name the input file and row of their record; each exact copy is a dropped row of its own.
MANIFEST_SCHEMA_VERSION = 2
