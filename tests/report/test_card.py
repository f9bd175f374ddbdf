"""The dataset card every published dataset carries: YAML that `datasets` and the Hub read, numbers from the manifest."""

import json
import logging
import warnings

import pytest
import yaml

from tests.conftest import write_jsonl
from tests.helpers import curate

ROWS = [
    {"prompt": f"question {i % 6}", "response": f"answer number {i} to it", "score": i % 5, "model": f"m{i % 3}"}
    for i in range(60)
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card")
    data = write_jsonl(folder / "in.jsonl", [*ROWS, {"prompt": "no answer"}, {"prompt": "", "response": "x"}])
    outcome = curate([data], folder / "curated", k=3, reward_field="score", source_field="model", license="cc-by-4.0")
    return folder / "curated", outcome.manifest


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_the_card_names_the_splits_and_datasets_loads_them_with_the_manifests_counts(published):
    from datasets import load_dataset

    folder, manifest = published
    card = (folder / "README.md").read_text()
    matter = front_matter(card)
    assert [config["config_name"] for config in matter["configs"]] == ["default", "rejects", "dropped"]
    assert matter["license"] == "cc-by-4.0" and matter["size_categories"] == ["n<1K"]
    train = load_dataset(str(folder))
    assert list(train) == ["train"] and train["train"].num_rows == manifest["counts"]["selected"]
    rejects = load_dataset(str(folder), "rejects")["train"]
    assert rejects.num_rows == manifest["counts"]["rejected"] == 2
    assert set(rejects["reason"]) == {"missing_response", "empty_prompt"}
    dropped = load_dataset(str(folder), "dropped")["train"]
    counts = manifest["counts"]
    assert sum(dropped["records"]) == counts["input_records"] - counts["selected"] - counts["rejected"]
    declared = {feature["name"] for feature in matter["dataset_info"][0]["features"]}
    assert declared == set(train["train"].column_names)


def test_the_body_states_the_manifests_numbers(published):
    folder, manifest = published
    card = (folder / "README.md").read_text()
    counts = manifest["counts"]
    assert (
        f"input_records {counts['input_records']:,} = rejected {counts['rejected']:,} + duplicates_merged "
        f"{counts['duplicates_merged']:,} + candidates {counts['candidates']:,}" in card
    )
    assert f"recommends K = {manifest['planner']['recommended_k']}" in card
    assert manifest["inputs"][0]["checksum"] in card and "| m0 |" in card


def test_the_card_round_trips_through_huggingface_hub_without_warnings(published, caplog):
    from huggingface_hub import DatasetCard

    folder, _ = published
    text = (folder / "README.md").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING):
            card = DatasetCard(text)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert card.data.license == "cc-by-4.0" and card.data.configs[0]["config_name"] == "default"
    assert json.loads(json.dumps(card.data.to_dict()))["tags"][0] == "mrtcurate"


def test_a_table_without_rows_is_not_declared_and_the_declared_ones_load_with_their_split_sizes(tmp_path, caplog):
    """`datasets` cannot read a Parquet table without rows, and ignores (with a warning) a split's YAML without
    num_bytes; with both right it verifies each split's row count against the card."""
    from datasets import load_dataset

    clean = write_jsonl(tmp_path / "in.jsonl", ROWS)
    outcome = curate([clean], tmp_path / "curated", k=3, reward_field="score")
    folder, counts = tmp_path / "curated", outcome.manifest["counts"]
    assert counts["rejected"] == 0
    card = (folder / "README.md").read_text()
    matter = front_matter(card)
    assert [config["config_name"] for config in matter["configs"]] == ["default", "dropped"]
    assert "`rejects/` holds no rows" in card and '"rejects")' not in card
    for info in matter["dataset_info"]:
        assert info["splits"][0]["num_bytes"] > 0
    with caplog.at_level(logging.WARNING):
        train = load_dataset(str(folder))["train"]
        dropped = load_dataset(str(folder), "dropped")["train"]
    assert not [record.getMessage() for record in caplog.records if "dataset_info" in record.getMessage()]
    assert train.num_rows == counts["selected"]
    assert sum(dropped["records"]) == counts["input_records"] - counts["selected"]
    with pytest.raises(ValueError, match="rejects"):
        load_dataset(str(folder), "rejects")
