"""The dataset card (README.md) every published dataset carries: the Hugging Face Hub shows it, and `datasets`
reads its YAML to name the splits. Everything in it comes from the manifest (and the kept rows' sources), so
it never says more than the run measured."""

from __future__ import annotations

import pyarrow as pa
import yaml

from mrtcurate.schemas.tables import DROPPED_SCHEMA, REJECTS_SCHEMA, curated_schema

CARD_NAME = "README.md"
_SIZES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
_DTYPES = {pa.string(): "string", pa.int32(): "int32", pa.int64(): "int64", pa.float64(): "float64", pa.bool_(): "bool"}


def features(schema: pa.Schema) -> list[dict]:
    """An Arrow schema as the card's `dataset_info.features` (the YAML form `datasets` reads and writes)."""
    return [_feature(field.name, field.type) for field in schema]


def _feature(name: str, kind: pa.DataType) -> dict:
    if pa.types.is_list(kind):
        inner = kind.value_type
        if pa.types.is_struct(inner):
            return {"name": name, "list": [_feature(child.name, child.type) for child in inner]}
        return {"name": name, "list": _DTYPES[inner]}
    return {"name": name, "dtype": _DTYPES[kind]}


def size_category(rows: int) -> str:
    return next((label for bound, label in _SIZES if rows < bound), "n>100M")


# Each config of the card: the manifest's list of its shards, and its folder. `datasets` (5.x) cannot load a Parquet
# table without rows (its reader asks for batches of the first row group's size, 0), so rejects or dropped without
# rows are left out of the configs; their empty files stay for polars.
SHARD_LISTS = {"default": "shards", "rejects": "rejects", "dropped": "dropped"}
_FOLDERS = {"default": "data", "rejects": "rejects", "dropped": "dropped"}
_DECLARED_WHERE_THEY_HOLD_ROWS = ("rejects", "dropped")


def declared_tables(manifest: dict) -> list[str]:
    """The card's configs: the curated rows always, rejects and dropped where they hold rows (a dataset written
    before dropped/ existed has none)."""
    return ["default"] + [
        name for name in _DECLARED_WHERE_THEY_HOLD_ROWS if _rows(manifest.get(SHARD_LISTS[name]) or [])
    ]


def _rows(shards: list[dict]) -> int:
    return sum(shard["rows"] for shard in shards)


def front_matter(manifest: dict, with_messages: bool, license_id: str | None, split_bytes: dict[str, int]) -> dict:
    """`split_bytes`: each declared table's size uncompressed (its Parquet footers' figure), the `num_bytes` that
    `datasets` requires beside `num_examples` in a split's YAML."""
    schemas = {"default": curated_schema(with_messages), "rejects": REJECTS_SCHEMA, "dropped": DROPPED_SCHEMA}
    configs, info = [], []
    for name in declared_tables(manifest):
        configs.append(
            {"config_name": name, "data_files": [{"split": "train", "path": f"{_FOLDERS[name]}/*.parquet"}]}
            | ({"default": True} if name == "default" else {})
        )
        split = {"name": "train", "num_bytes": split_bytes[name], "num_examples": _rows(manifest[SHARD_LISTS[name]])}
        info.append({"config_name": name, "features": features(schemas[name]), "splits": [split]})
    kept = _rows(manifest["shards"])
    matter = {
        **({"license": license_id} if license_id else {}),
        "task_categories": ["text-generation"],
        "size_categories": [size_category(kept)],
        "tags": ["mrtcurate", "multi-response", "sft", f"selector-{manifest['selection']['selector']}"],
        "configs": configs,
        "dataset_info": info,
    }
    return matter


def render_card(
    manifest: dict,
    kept_by_source: dict[str, int],
    with_messages: bool,
    split_bytes: dict[str, int],
    license_id: str | None = None,
) -> str:
    counts, config, selection = manifest["counts"], manifest["config"], manifest["selection"]
    embedding, planner = manifest.get("embedding") or {}, manifest.get("planner")
    kept = _rows(manifest["shards"])
    lines = [
        "---",
        yaml.safe_dump(
            front_matter(manifest, with_messages, license_id, split_bytes), sort_keys=False, allow_unicode=True
        ).rstrip(),
        "---",
        "",
        "# Multi-response fine-tuning set",
        "",
        (
            f"Curated with mrtcurate {manifest['mrtcurate_version']} on {manifest['created_at']}: {kept:,} responses for "
            f"{counts['prompts']:,} prompts, K = {selection['k']} per prompt by the `{selection['selector']}` selector."
        ),
        "",
        "## Inputs",
        "",
        *[
            f"- `{entry['path']}`: {entry['bytes']:,} bytes, {entry['checksum_kind']} `{entry['checksum']}`"
            for entry in manifest["inputs"]
        ],
        "",
        "## Counts",
        "",
        (
            "Every input record is accounted for: "
            f"input_records {counts['input_records']:,} = rejected {counts['rejected']:,} + duplicates_merged "
            f"{counts['duplicates_merged']:,} + candidates {counts['candidates']:,}; {counts['selected']:,} of the "
            f"candidates were selected (the `train` split)."
        ),
        "",
        "| reason | rejected |",
        "|---|---|",
        *[
            f"| {reason} | {count:,} |"
            for reason, count in sorted(manifest["rejected_by_reason"].items(), key=lambda item: -item[1])
        ],
        "",
        "## Selection",
        "",
        f"- selector `{selection['selector']}`, K = {selection['k']}, seed {config['seed']}, weighting `{config['weighting']}`"
        + (f", lambda {config['lambda']}" if selection["selector"] == "qd" else ""),
        f"- near-duplicates merged above a word-sequence ratio of {config['near_dup']}"
        + (f" and an embedding cosine of {config['near_dup_embedding']}" if config.get("near_dup_embedding") else ""),
        f"- embedder `{embedding.get('embedder', config['embedder'])}` ({embedding.get('backend', 'n/a')}, {embedding.get('precision', 'n/a')})",
    ]
    if selection.get("note"):
        lines.append(f"- {selection['note']}")
    if planner:
        lines += ["", "## Is K > 1 worth it?", "", _planner_line(planner)]
    if kept_by_source:
        pool = (manifest.get("pool_profile") or {}).get("sources", {})
        pool_total = sum(pool.values()) or 1
        lines += ["", "## Kept share by source", "", "| source | pool share | kept share |", "|---|---|---|"]
        for source, count in sorted(kept_by_source.items(), key=lambda item: -item[1])[:20]:
            lines.append(f"| {source} | {pool.get(source, 0) / pool_total:.1%} | {count / max(kept, 1):.1%} |")
    lines += [
        "",
        "## Columns",
        "",
        "`prompt` and `completion` are TRL's prompt-completion form"
        + (
            " and `messages` its conversational form (the whole conversation, the completion last)"
            if with_messages
            else ""
        )
        + ". `weight` is the row's share of its prompt in the loss (`mrt train` uses it; TRL's SFTTrainer ignores it); "
        "`rank`, `reward`, `quality`, `gain`, `pool_size` and `multiplicity` say why the row was kept. "
        "The `rejects` config holds every rejected input record with its reason; the `dropped` config one row per "
        "parsed response that was not kept (`reason`: exact_duplicate, near_duplicate or not_selected; `records`: the "
        "input records it stands for; `merged_into`, `cosine` and `pool_rank` say why). Data rows, dropped records and "
        "rejects add up to the input records; dropped and rejected rows name their input record by `source_file` and `source_row`.",
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset",
        'train = load_dataset("PATH_OR_REPO")["train"]',
        *[f'{name} = load_dataset("PATH_OR_REPO", "{name}")["train"]' for name in declared_tables(manifest)[1:]],
        "",
        "import polars as pl",
        'rows = pl.read_parquet("PATH_OR_REPO/data/*.parquet")',
        "```",
        "",
        *_empty_tables_line(manifest),
        "`manifest.json` holds the run's full configuration and figures; `report.html` shows them with plots.",
        "",
    ]
    return "\n".join(lines)


def _planner_line(planner: dict) -> str:
    if planner.get("recommended_k") is None:
        return f"The variance-budget planner could not estimate a K from {planner.get('prompts', 0):,} prompts (see manifest.json)."
    rho_ci = planner.get("rho_ci")
    interval = (
        f" (interval {rho_ci[0]:.3f} to {rho_ci[1]:.3f} at {planner['ci_level']:.0%})"
        if rho_ci and None not in rho_ci
        else ""
    )
    basis = (
        f"K* under cost ratio {planner['cost_ratio']}"
        if planner.get("cost_ratio")
        else f"the smallest K within {planner['tolerance']:.0%} of the variance with every response kept, capped at {planner['k_max']}"
    )
    k_star = "" if planner.get("k_star") is None else f"; K* at cost ratio 1 = {planner['k_star']:.2f}"
    rho = (
        ""
        if planner.get("rho") is None
        else f" The share of reward variance between prompts is rho = {planner['rho']:.3f}{interval}."
    )
    return (
        f"The variance-budget planner recommends K = {planner['recommended_k']} ({basis}{k_star}), from "
        f"{planner['prompts']:,} prompts and {planner['responses']:,} responses.{rho}"
    )


def _empty_tables_line(manifest: dict) -> list[str]:
    declared = declared_tables(manifest)
    empty = [name for name in _DECLARED_WHERE_THEY_HOLD_ROWS if name in manifest and name not in declared]
    if not empty:
        return []
    names = " and ".join(f"`{name}/`" for name in empty)
    line = (
        f"{names} {'hold' if len(empty) > 1 else 'holds'} no rows: the empty Parquet files are there for polars and pyarrow, and the card declares no "
        "config for them, as `datasets` cannot load a Parquet table without rows."
    )
    return [line, ""]
