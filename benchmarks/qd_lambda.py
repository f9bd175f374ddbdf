"""Which lambda should qd default to? Measured where both halves are known, then checked on real corpora.

    .venv/bin/python benchmarks/qd_lambda.py [--embedder minilm-int8] [--k 4]

Part 1, the structured benchmark's tasks (bench/tasks.py: every answer's validity and mode are known, the
reward is biased towards two modes): per lambda, qd's share of valid kept answers against topk's, and the
valid modes it keeps against random's. The rule: the largest-quality lambda whose valid share is within 95%
of topk's and whose valid modes are at least random's.
Part 2, real corpora with rewards from ../shared/data: per lambda, mean reward kept against topk's and
coverage (the objective's diversity term) against random's, with the frontier's own recommendation.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import resource
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from mrtcurate.analysis.frontier import LAMBDA_GRID, kept_coverage, qd_frontier
from mrtcurate.bench.corpus import write_corpus
from mrtcurate.bench.tasks import questions, split_entities
from mrtcurate.ids import identity_key, stable_id
from mrtcurate.schemas.config import QDSettings
from mrtcurate.selectors import NearDuplicateRule, Pool, collapse_near_duplicates, select
from mrtcurate.selectors.qd import select_qd
from mrtcurate.selectors.random_k import select_random
from mrtcurate.selectors.topk import select_topk
from mrtcurate.vectors.embedders import load_embedder

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pools_from(records: list[tuple[str, str, float | None]], embedder) -> tuple[list[Pool], dict[str, list[str]]]:
    """(prompt, response, reward) rows to pools as the job builds them: exact copies merged (best reward),
    then lexical near-duplicates collapsed."""
    grouped: dict[str, dict[str, list]] = collections.defaultdict(dict)
    for prompt, response, reward in records:
        key = identity_key(response)
        seen = grouped[prompt].setdefault(key, [response, reward, 0])
        seen[1] = reward if seen[1] is None else max(seen[1], reward if reward is not None else -np.inf)
        seen[2] += 1
    pools, texts = [], {}
    for prompt, members in grouped.items():
        responses = [value[0] for value in members.values()]
        pool = Pool(
            stable_id(prompt), tuple(stable_id(identity_key(r)) for r in responses),
            np.array([value[2] for value in members.values()], dtype=np.int64),
            np.array([np.nan if value[1] is None else value[1] for value in members.values()], dtype=np.float64),
            embedder.encode(responses, batch_size=64),
        )  # fmt: skip
        collapsed = collapse_near_duplicates(pool, responses, NearDuplicateRule(0.905))
        kept = [responses[pool.response_ids.index(rid)] for rid in collapsed.pool.response_ids]
        pools.append(collapsed.pool)
        texts[collapsed.pool.prompt_id] = kept
    return pools, texts


def bench_part(embedder, k: int) -> None:
    question_list = questions(0)
    entities, _ = split_entities(16, 4)
    answer_of = {}
    for question in question_list:
        for mode, answer in enumerate(question.answers):
            answer_of[(question.text, answer)] = mode
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.jsonl"
        write_corpus(path, entities, question_list, samples=16, seed=0)
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    pools, texts = pools_from([(row["prompt"], row["response"], row["reward"]) for row in rows], embedder)
    question_of = {stable_id(row["prompt"]): row["prompt"].split(" asks : ")[1] for row in rows}

    def valid_modes(pool: Pool, kept: np.ndarray) -> tuple[float, int]:
        question = question_of[pool.prompt_id]
        modes = [answer_of.get((question, word)) for word in (_answer_word(texts[pool.prompt_id][i]) for i in kept)]
        valid = [mode for mode in modes if mode is not None]
        return len(valid) / len(kept), len(set(valid))

    def measure(selector) -> tuple[float, float]:
        results = [valid_modes(pool, select(selector, pool, k, 0).indices) for pool in pools]
        return float(np.mean([r[0] for r in results])), float(np.mean([r[1] for r in results]))

    topk_valid, topk_modes = measure(select_topk)
    random_valid, random_modes = measure(select_random)
    print(
        f"bench tasks: {len(pools)} pools, K={k}; topk valid {topk_valid:.3f}, modes {topk_modes:.2f}; random valid {random_valid:.3f}, modes {random_modes:.2f}"
    )
    passing = []
    for lam in LAMBDA_GRID:
        valid, modes = measure(partial(select_qd, settings=QDSettings(**{"lambda": lam})))
        ok = valid >= 0.95 * topk_valid and modes >= random_modes
        passing += [lam] if ok else []
        print(
            f"  qd lambda {lam:.1f}: valid {valid:.3f} ({valid / topk_valid:.1%} of topk), valid modes {modes:.2f} {'<- passes' if ok else ''}"
        )
    print(f"  lambdas that pass both: {passing}")


def _answer_word(response: str) -> str:
    for prefix in ("my pick is ", "i say "):
        response = response.removeprefix(prefix)
    return response.split(" ")[0]


def real_part(name: str, embedder, k: int) -> None:
    with gzip.open(SHARED / name / "responses.jsonl.gz", "rt") as lines:
        rows = [json.loads(line) for line in lines]
    records = [
        (row["prompt_id"], row["response"], row.get("score"))
        for row in rows
        if isinstance(row.get("response"), str) and row["response"].strip()
    ]
    prompts = sorted({prompt for prompt, _, _ in records}, key=lambda p: stable_id(f"lambda {p}"))[:200]
    chosen = set(prompts)
    pools, _ = pools_from([record for record in records if record[0] in chosen], embedder)
    pools = [pool for pool in pools if pool.has_rewards and len(pool) > k]
    frontier = qd_frontier(pools, k, QDSettings(), 0)

    def mean_reward(selector) -> float:
        return float(np.mean([np.nanmean(pool.rewards[select(selector, pool, k, 0).indices]) for pool in pools]))

    def coverage(selector) -> float:
        return float(np.mean([
            kept_coverage(pool.embeddings, pool.multiplicities, np.arange(len(pool)), select(selector, pool, k, 0).indices) for pool in pools
        ]))  # fmt: skip

    topk_reward, random_coverage = mean_reward(select_topk), coverage(select_random)
    print(
        f"{name}: {len(pools)} rewarded pools of more than K; topk mean reward {topk_reward:.3f}, random coverage {random_coverage:.3f}"
    )
    for lam in (0.1, 0.2, 0.3, 0.5):
        selector = partial(select_qd, settings=QDSettings(**{"lambda": lam}))
        print(
            f"  qd lambda {lam}: mean reward {mean_reward(selector):.3f} ({mean_reward(selector) / topk_reward:.1%} of topk), coverage {coverage(selector):.3f}"
        )
    print(f"  frontier recommends lambda {frontier['recommended_lambda']}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default="minilm-int8")
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    started = time.perf_counter()
    embedder = load_embedder(args.embedder)
    bench_part(embedder, args.k)
    for name in ("vicuna80_fastchat", "instructgpt_samples", "gsm8k_model_solutions"):
        real_part(name, embedder, args.k)
    print(
        f"wall {time.perf_counter() - started:.0f} s, peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
