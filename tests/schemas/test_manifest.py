import pytest

from mrtcurate.schemas import ShardInfo, build_config
from mrtcurate.schemas.manifest import AccountingError, build_manifest

CONFIG = build_config({"input": ["a"], "output": "o"}, {})
REJECT_SHARDS = [ShardInfo("rejects/a.parquet", 2, "y")]
COUNTS = {
    "parsed_candidates": 10,
    "rejected": 2,
    "duplicates_exact": 3,
    "duplicates_near": 1,
    "prompts": 2,
    "candidates": 6,
    "selected": 5,
}


def test_manifest_counts_add_up():
    manifest = build_manifest(
        CONFIG, (), COUNTS, {"invalid_json": 2}, [ShardInfo("data/p.parquet", 5, "x")], REJECT_SHARDS
    )
    counts = manifest["counts"]
    assert counts["input_records"] == 12 == counts["rejected"] + counts["duplicates_merged"] + counts["candidates"]
    assert (counts["duplicates_merged_exact"], counts["duplicates_merged_near"]) == (3, 1)
    assert manifest["config_hash"] == CONFIG.config_hash()


def test_lost_records_are_caught():
    with pytest.raises(AccountingError, match="input_records"):
        build_manifest(CONFIG, (), {**COUNTS, "candidates": 5}, {}, [ShardInfo("d", 5, "x")], REJECT_SHARDS)
    with pytest.raises(AccountingError, match="selected"):
        build_manifest(CONFIG, (), COUNTS, {}, [ShardInfo("d", 4, "x")], REJECT_SHARDS)
    with pytest.raises(AccountingError, match="reject shard rows 1"):
        build_manifest(CONFIG, (), COUNTS, {}, [ShardInfo("d", 5, "x")], [ShardInfo("rejects/a.parquet", 1, "y")])
