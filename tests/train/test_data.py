import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mrtcurate.errors import UserError
from mrtcurate.train.data import load_data
from tests.conftest import write_jsonl
from tests.helpers import curate


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("curated")
    rows = [
        {"prompt": f"name thing {p}", "response": f"answer {p} {r}", "score": r} for p in range(6) for r in range(5)
    ]
    write_jsonl(root / "in.jsonl", rows)
    curate([root / "in.jsonl"], root / "out", k=3, reward_field="score", shards=2)
    return root / "out"


def test_reads_every_curated_row_with_its_weight(curated):
    table = load_data(str(curated)).rows
    assert table.num_rows == 18
    weights = {}
    for row in table.to_pylist():
        weights[row["prompt_id"]] = weights.get(row["prompt_id"], 0) + row["weight"]
    assert all(abs(total - 1.0) < 1e-9 for total in weights.values())


def test_tampered_shard_is_refused(curated, tmp_path):
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(curated, copy)
    shard = min((copy / "data").glob("*.parquet"))
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, table.num_rows - 1), shard)
    with pytest.raises(UserError, match="fails its checksum"):
        load_data(str(copy))
    shard.unlink()
    with pytest.raises(UserError, match="missing"):
        load_data(str(copy))


def test_plain_parquet_defaults_and_zero_weights(tmp_path):
    pq.write_table(pa.table({"prompt": ["a", "a", "b"], "completion": ["x", "y", "z"]}), tmp_path / "plain.parquet")
    table = load_data(str(tmp_path / "plain.parquet")).rows
    assert table["weight"].to_pylist() == [1.0, 1.0, 1.0]
    assert table["prompt_id"][0] == table["prompt_id"][1] != table["prompt_id"][2]
    pq.write_table(
        pa.table({"prompt": ["a", "b"], "completion": ["x", "z"], "weight": [0.0, 0.5]}), tmp_path / "w.parquet"
    )
    assert load_data(str(tmp_path / "w.parquet")).rows["completion"].to_pylist() == ["z"]


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"prompt": ["a"], "text": ["x"]}, "lacks column"),
        ({"prompt": ["a"], "completion": ["x"], "weight": [-1.0]}, "weight of -1.0"),
        ({"prompt": ["a"], "completion": ["x"], "weight": [0.0]}, "no row with a positive weight"),
    ],
)
def test_bad_plain_parquet_is_one_clear_error(tmp_path, columns, message):
    pq.write_table(pa.table(columns), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match=message):
        load_data(str(tmp_path / "bad.parquet"))


def test_missing_path_and_bad_manifest(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_data(str(tmp_path / "nope"))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_data(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"counts": {}}))
    with pytest.raises(UserError, match="lists no shards"):
        load_data(str(tmp_path))


@pytest.mark.parametrize("escape", ["/etc/passwd", "../outside.parquet", "data/../../outside.parquet"])
def test_shard_paths_leading_outside_the_dataset_are_refused_before_any_read(curated, tmp_path, escape):
    # Issue 20: mrt train trained on a file outside the dataset, and read and hashed /etc/passwd.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(curated, copy)
    pq.write_table(pq.read_table(min((copy / "data").glob("*.parquet"))), tmp_path / "outside.parquet")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"][0]["path"] = escape
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="leads outside"):
        load_data(str(copy))


def test_an_output_that_is_or_holds_an_input_is_refused_before_anything_is_deleted(curated, tmp_path):
    # Issue 20: --overwrite with --output equal to --data, to --model or to a parent of --data deleted them.
    from mrtcurate.schemas.train_config import TrainConfig
    from mrtcurate.train.job import _prepare_output

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    for output in (curated, curated.parent, model):
        config = TrainConfig(data=str(curated), model=str(model), output=str(output), overwrite=True)
        with pytest.raises(UserError, match="is or holds --(data|model)"):
            _prepare_output(output, config)
    assert (curated / "manifest.json").exists() and (model / "config.json").exists()
