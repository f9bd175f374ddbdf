"""`mrt explore DIR`: what the run kept, per prompt, and why, gathered for report/explorer.py to draw.

A dataset holds its kept rows, its rejects and, in `dropped/`, the id of every response it did not keep with
the reason (its text only with `--dropped-texts`, and then the pools come from the dataset alone). Otherwise
the explorer rebuilds the texts of the pools it shows from the run's own inputs, when they are still there unchanged (each file's sha256 is checked against the
manifest): the job's parser, the same exact merge by response id, and the run's embedder for the map. Each
candidate is then kept (in data/, with its rank and gain), merged into another (a near copy: the one it
was merged into), set aside as boilerplate, or not chosen: as `dropped/` records it, or, for a dataset
written before that table existed, by the same near-duplicate collapse the run made (selectors.
collapse_near_duplicates with the run's rule). When an input moved or changed, the pages show the kept
rows alone and say why.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict

import numpy as np
import polars as pl

from mrtcurate import selectors
from mrtcurate.errors import UserError
from mrtcurate.ids import identity_key, stable_id
from mrtcurate.ingest.files import checksum as input_checksum
from mrtcurate.ingest.files import is_local, local_path, open_binary
from mrtcurate.ingest.formats import RawRecord, iter_records
from mrtcurate.ingest.layouts import to_units
from mrtcurate.ingest.probe import resolve_mapping
from mrtcurate.ingest.trees import rows_in_memory
from mrtcurate.schemas import Candidate, RunConfig, TreeMessage
from mrtcurate.schemas.manifest import read_manifest
from mrtcurate.schemas.records import CONTENT_CHECKSUM
from mrtcurate.vectors.embedders import load_embedder, window_fit

TEXT_CHARS = 2_000  # of each text shown; the full text is in the dataset
MAP_POINTS = 300  # of a pool drawn on its map (every kept answer, then a seeded sample)
REJECTS_PER_REASON = 50
LARGEST_POOLS_SHARE = 0.1  # of the prompts shown, the largest pools (the rest a seeded sample)


def explore_data(directory: str, prompts: int = 2_000, named: tuple[str, ...] = (), seed: int = 0) -> dict:
    if not is_local(directory):
        raise UserError(f"mrt explore reads a local dataset; copy {directory} to a local folder first")
    root = local_path(directory)
    manifest = read_manifest(root)
    kept = _read(root, manifest["shards"])
    chosen, total = _choose_prompts(kept, prompts, named, seed)
    kept = kept.filter(pl.col("prompt_id").is_in(chosen))
    config = RunConfig.from_options({**manifest["config"], "output": root})
    # Read once each: the dropped rows of the prompts shown (None for a dataset written before dropped/ existed)
    # and the boilerplate rejects as (prompt, response, source).
    dropped = (
        _read(root, manifest["dropped"]).filter(pl.col("prompt_id").is_in(chosen)) if "dropped" in manifest else None
    )
    set_aside = _boilerplate(root, manifest)
    pools, pools_from, why_not = _pools_from_dropped(manifest, kept, dropped, set_aside), "dropped", None
    if pools is None:
        pools, why_not = _rebuilt_pools(config, manifest, set(chosen))
        pools_from = "inputs" if pools is not None else None
    boilerplate = {(prompt, response) for prompt, response, _ in set_aside}
    decided = None if dropped is None else _decided(dropped)
    embedder = None
    entries = []
    for prompt_id, rows in sorted(kept.group_by("prompt_id", maintain_order=True), key=lambda item: item[0][0]):
        rows = rows.sort("rank").to_dicts()
        candidates = pools.get(prompt_id[0]) if pools is not None else None
        if candidates is None:
            entries.append(_kept_only(rows))
            continue
        embedder = embedder or load_embedder(config.embedding.embedder, config.embedding.max_tokens)
        decisions = None if decided is None else decided.get(prompt_id[0], {})
        entries.append(_pool_entry(rows, candidates, config, embedder, boilerplate, decisions, seed))
    return _finite(
        {
            "dataset": _dataset_panel(manifest, len(entries), total),
            "pools_from": pools_from,
            "why_kept_only": why_not,
            "prompts": entries,
            "rejects": _rejects(root, manifest),
        }
    )


def _finite(value):
    """JSON has no NaN: a non-finite number (a gain the selector left undefined) is shown as blank."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _read(root: str, shards: list[dict]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(os.path.join(root, shard["path"])) for shard in shards], how="vertical_relaxed")


def _choose_prompts(kept: pl.DataFrame, limit: int, named: tuple[str, ...], seed: int) -> tuple[list[str], int]:
    sizes = (
        kept.group_by("prompt_id")
        .agg(pl.col("pool_size").first())
        .sort(["pool_size", "prompt_id"], descending=[True, False])
    )
    every = sizes["prompt_id"].to_list()
    missing = sorted(set(named) - set(every))
    if missing:
        raise UserError(f"--prompt-id {missing[0]} is not a prompt of this dataset")
    if len(every) <= limit:
        return every, len(every)
    largest = every[: max(1, int(limit * LARGEST_POOLS_SHARE))]
    rest = sorted(set(every) - set(largest) - set(named))
    sampled = random.Random(seed).sample(rest, max(0, limit - len(largest) - len(named)))
    return sorted({*largest, *named, *sampled}), len(every)


def _pools_from_dropped(
    manifest: dict, kept: pl.DataFrame, dropped: pl.DataFrame | None, set_aside: list[tuple[str, str, str]]
) -> dict[str, list[Candidate]] | None:
    """A run with --dropped-texts holds the text of every response it did not keep: the pools come from the
    dataset alone, without reading (or even having) the inputs. Rewards are as written, as on kept rows."""
    if dropped is None or not manifest["config"].get("dropped_texts"):
        return None
    # A row per copy (one standing for every copy where the records were not known), and a response may answer
    # several prompts: summed by the pair.
    copies = {
        (prompt_id, response_id): records
        for prompt_id, response_id, records in dropped.filter(pl.col("reason") == "exact_duplicate")
        .group_by("prompt_id", "response_id")
        .agg(pl.col("records").sum())
        .iter_rows()
    }
    prompts = dict(kept.select("prompt_id", "prompt").unique("prompt_id").iter_rows())
    columns = ("prompt_id", "response_id", "completion", "reward", "source")
    rows = [
        *kept.select(columns).iter_rows(),
        *dropped.filter(pl.col("reason") != "exact_duplicate").select(columns).iter_rows(),
    ]
    pools: dict[str, list[Candidate]] = defaultdict(list)
    for prompt_id, response_id, completion, reward, source in rows:
        multiplicity = 1 + copies.get((prompt_id, response_id), 0)
        pools[prompt_id].append(
            Candidate(prompt_id, response_id, prompts[prompt_id], completion, reward, source, multiplicity=multiplicity)
        )
    # Boilerplate left the pools as rejects, one per record: their records hold the prompt and the text.
    prompt_ids = {prompt: prompt_id for prompt_id, prompt in prompts.items()}
    found: dict[tuple[str, str, str], int] = defaultdict(int)
    for prompt, response, source in set_aside:
        if prompt in prompt_ids:
            found[(prompt_ids[prompt], response, source)] += 1
    for (prompt_id, completion, source), records in found.items():
        response_id = stable_id(identity_key(completion))
        pools[prompt_id].append(
            Candidate(prompt_id, response_id, prompts[prompt_id], completion, None, source, multiplicity=records)
        )
    return {prompt_id: sorted(pool, key=lambda c: c.response_id) for prompt_id, pool in pools.items()}


def _rebuilt_pools(
    config: RunConfig, manifest: dict, wanted: set[str]
) -> tuple[dict[str, list[Candidate]] | None, str | None]:
    recorded = {entry["path"]: entry["checksum"] for entry in manifest["inputs"]}
    for path, checksum in recorded.items():
        if not os.path.isfile(path):
            return None, f"input {path} is no longer there"
        if checksum.startswith(CONTENT_CHECKSUM) and input_checksum(path, 0, None) != checksum:
            return None, f"input {path} changed since the run"
    if config.grouping.merge_prompts is not None:
        return None, "--merge-prompts joined prompts by similarity during the run, which this rebuild does not repeat"
    files, _, mapping = resolve_mapping(config.ingest, fingerprint=False)
    by_prompt: dict[str, dict[str, Candidate]] = defaultdict(dict)
    for file in files:
        if file.path not in recorded:
            continue
        messages: list[TreeMessage] = []
        with open_binary(file.path) as stream:
            for record in iter_records(stream, file.format, file.path, config.ingest.max_chars, size=file.bytes):
                if not isinstance(record, RawRecord):
                    continue
                for unit in to_units(record, mapping, file.path):
                    if isinstance(unit, TreeMessage):
                        messages.append(unit)
                    elif isinstance(unit, Candidate):
                        _add(by_prompt, unit, wanted)
        for unit in rows_in_memory(messages, mapping) if messages else ():
            if isinstance(unit, Candidate):
                _add(by_prompt, unit, wanted)
    return {prompt: sorted(pool.values(), key=lambda c: c.response_id) for prompt, pool in by_prompt.items()}, None


def _add(by_prompt: dict, candidate: Candidate, wanted: set[str]) -> None:
    if candidate.prompt_id not in wanted:
        return
    pool = by_prompt[candidate.prompt_id]
    seen = pool.get(candidate.response_id)
    pool[candidate.response_id] = candidate if seen is None else seen.merged_with(candidate)


def _boilerplate(root: str, manifest: dict) -> list[tuple[str, str, str]]:
    """(prompt, response, source) of every boilerplate reject, one per record."""
    rejects = _read(root, manifest["rejects"]).filter(pl.col("reason") == "boilerplate_response")
    found = []
    for record, source in rejects.select("record", "source_file").iter_rows():
        fields = json.loads(record)
        found.append((fields["prompt"], fields["response"], source))
    return found


def _decided(dropped: pl.DataFrame) -> dict[str, dict[str, tuple[str, str | None]]]:
    """What the run decided for each response it did not keep, by prompt: (reason, merged into)."""
    table = dropped.filter(pl.col("reason") != "exact_duplicate")
    decided: dict[str, dict[str, tuple[str, str | None]]] = defaultdict(dict)
    for prompt_id, response_id, reason, merged_into in table.select(
        "prompt_id", "response_id", "reason", "merged_into"
    ).iter_rows():
        decided[prompt_id][response_id] = (reason, merged_into)
    return decided


def _pool_entry(
    rows: list[dict],
    candidates: list[Candidate],
    config: RunConfig,
    embedder,
    boilerplate: set,
    decisions: dict[str, tuple[str, str | None]] | None,
    seed: int,
) -> dict:
    kept = {row["response_id"]: row for row in rows}
    set_aside = [c for c in candidates if (c.prompt, c.completion) in boilerplate and c.response_id not in kept]
    in_pool = [c for c in candidates if c not in set_aside]
    drawn = _map_points([c.response_id in kept for c in in_pool], seed)
    if decisions is None:  # a dataset without dropped/: the run's collapse, done again, over every vector
        vectors = embedder.encode([c.completion for c in in_pool]) if in_pool else np.zeros((0, 1))
        decisions = _collapse_again(rows[0]["prompt_id"], in_pool, vectors, config)
        drawn_vectors = vectors[drawn]
    else:  # only the map's points need a vector: a few hundred of a pool of any size
        drawn_vectors = embedder.encode([in_pool[index].completion for index in drawn]) if drawn else None
    points = _projected(drawn_vectors, drawn)
    entries = []
    for index, candidate in enumerate(in_pool):
        row = kept.get(candidate.response_id)
        reason, into = decisions.get(candidate.response_id, ("not_selected", None))
        status = "kept" if row is not None else "merged" if reason == "near_duplicate" else "not chosen"
        entries.append(_candidate(candidate, status, into if status == "merged" else None, row, points.get(index)))
    entries += [_candidate(c, "boilerplate", None, None, None) for c in set_aside]
    # Kept by rank, the others best reward first.
    entries.sort(
        key=lambda entry: (
            {"kept": 0, "merged": 1, "not chosen": 2, "boilerplate": 3}[entry["status"]],
            entry["rank"] or 0,
            -(entry["reward"] if entry["reward"] is not None else -np.inf),
            entry["id"],
        )
    )
    merged = sum(entry["status"] == "merged" for entry in entries)
    return _prompt_summary(rows, entries, pool_size=len(in_pool) - merged)


def _collapse_again(
    prompt_id: str, in_pool: list[Candidate], vectors: np.ndarray, config: RunConfig
) -> dict[str, tuple[str, str | None]]:
    pool = selectors.Pool(
        prompt_id=prompt_id,
        response_ids=tuple(c.response_id for c in in_pool),
        multiplicities=np.array([c.multiplicity for c in in_pool], dtype=np.int64),
        rewards=np.array([np.nan if c.reward is None else c.reward for c in in_pool], dtype=np.float64),
        embeddings=np.asarray(vectors, dtype=np.float32),
    )
    rule = selectors.NearDuplicateRule(config.grouping.near_dup, config.grouping.near_dup_embedding)
    texts = [c.completion for c in in_pool]
    fits = (
        window_fit(config.embedding.embedder, config.embedding.max_tokens)(texts)
        if rule.embedding and len(in_pool) > 1
        else None
    )
    collapsed = selectors.collapse_near_duplicates(pool, texts, rule, fits)
    return {
        in_pool[member].response_id: ("near_duplicate", in_pool[representative].response_id)
        for representative, members in collapsed.clusters
        for member in members
    }


def _map_points(kept: list[bool], seed: int) -> list[int]:
    """The pool's members its map draws: every kept one and a seeded sample of the rest, MAP_POINTS in all; none
    for a pool of under three."""
    if len(kept) < 3:
        return []
    chosen = [i for i, keep in enumerate(kept) if keep]
    others = [i for i, keep in enumerate(kept) if not keep]
    return chosen + sorted(random.Random(seed).sample(others, min(len(others), max(0, MAP_POINTS - len(chosen)))))


def _projected(vectors: np.ndarray | None, points: list[int]) -> dict[int, tuple[float, float]]:
    """The drawn members' embeddings projected onto their first two principal components (numpy's SVD: two axes of
    a few hundred points need no library)."""
    if not points:
        return {}
    vectors = np.asarray(vectors, dtype=np.float64)
    centred = vectors - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ axes[:2].T
    scale = np.abs(projected).max() or 1.0
    return {
        index: (round(float(x / scale), 4), round(float(y / scale), 4))
        for index, (x, y) in zip(points, projected, strict=True)
    }


def _candidate(candidate: Candidate, status: str, into: str | None, row: dict | None, point) -> dict:
    return {
        "id": candidate.response_id,
        "text": candidate.completion[:TEXT_CHARS],
        "status": status,
        "into": into,
        "multiplicity": candidate.multiplicity,
        "reward": row["reward"] if row else candidate.reward,
        "rank": row["rank"] if row else None,
        "gain": row["gain"] if row else None,
        "source": candidate.source,
        "xy": point,
    }


def _kept_only(rows: list[dict]) -> dict:
    entries = [
        {
            "id": row["response_id"],
            "text": row["completion"][:TEXT_CHARS],
            "status": "kept",
            "into": None,
            "multiplicity": row["multiplicity"],
            "reward": row["reward"],
            "rank": row["rank"],
            "gain": row["gain"],
            "source": row["source"],
            "xy": None,
        }
        for row in rows
    ]
    return _prompt_summary(rows, entries, pool_size=rows[0]["pool_size"])


def _prompt_summary(rows: list[dict], entries: list[dict], pool_size: int) -> dict:
    rewards = [entry["reward"] for entry in entries if entry["reward"] is not None]
    return {
        "id": rows[0]["prompt_id"],
        "prompt": rows[0]["prompt"][:TEXT_CHARS],
        "pool_size": pool_size,
        "kept": len(rows),
        "sources": sorted({entry["source"] for entry in entries}),
        "reward_min": min(rewards) if rewards else None,
        "reward_max": max(rewards) if rewards else None,
        "candidates": entries,
    }


def _rejects(root: str, manifest: dict) -> list[dict]:
    rejects = _read(root, manifest["rejects"])
    out = []
    for reason, count in sorted(manifest["rejected_by_reason"].items(), key=lambda item: -item[1]):
        rows = rejects.filter(pl.col("reason") == reason).head(REJECTS_PER_REASON).to_dicts()
        out.append(
            {
                "reason": reason,
                "count": count,
                "records": [{**row, "record": row["record"][:TEXT_CHARS]} for row in rows],
            }
        )
    return out


def _dataset_panel(manifest: dict, shown: int, total: int) -> dict:
    planner = manifest.get("planner") or {}
    return {
        "counts": manifest["counts"],
        "k": manifest["selection"]["k"],
        "selector": manifest["selection"]["selector"],
        "recommended_k": planner.get("recommended_k"),
        "rho": planner.get("rho"),
        "created_at": manifest["created_at"],
        "prompts_shown": shown,
        "prompts_total": total,
    }
