"""Near-duplicate rules against hand-labelled real answer pairs (tests/fixtures/near_duplicates), and what
each rule does to whole pools of a real corpus.

    .venv/bin/python benchmarks/near_dup_rules.py [--corpus ../shared/data/vicuna80_fastchat/responses.jsonl.gz]

Part 1, pairs: precision and recall of the old rule (cosine >= 0.95 with the default embedder) and of the
lexical rule (vectors/lexical.py) over thresholds, and of shingle Jaccard (what MinHash estimates) for
comparison. Part 2, pools: on a corpus, candidates merged and the least similar pair inside a merged group
under connected components at cosine 0.95 (the old collapse) against clusters around representatives.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np

from mrtcurate.ids import identity_key
from mrtcurate.selectors import NearDuplicateRule, Pool, collapse_near_duplicates
from mrtcurate.vectors.components import near_duplicate_components
from mrtcurate.vectors.embedders import load_embedder
from mrtcurate.vectors.lexical import lexical_pairs, word_sequence

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "near_duplicates" / "pairs.jsonl"


def precision_recall(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    hits = (predicted & labels).sum()
    return hits / max(predicted.sum(), 1), hits / labels.sum()


def shingle_jaccard(a: str, b: str, size: int) -> float:
    def shingles(text):
        words = word_sequence(text)
        return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}

    left, right = shingles(a), shingles(b)
    return len(left & right) / len(left | right)


def pairs_part(embedder_name: str) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    labels = np.array([row["near_duplicate"] for row in rows])
    print(f"{len(rows)} labelled pairs, {labels.sum()} near-duplicates")
    embedder = load_embedder(embedder_name)
    started = time.perf_counter()
    cosines = np.array([float(np.dot(*embedder.encode([row["a"], row["b"]], batch_size=2))) for row in rows])
    print(f"  embedded in {time.perf_counter() - started:.1f} s with {embedder_name}")
    for tau in (0.9, 0.95, 0.98):
        precision, recall = precision_recall(cosines >= tau, labels)
        print(f"  old rule, cosine >= {tau}: precision {precision:.3f}, recall {recall:.3f}")
    for size in (1, 2, 3):
        scores = np.array([shingle_jaccard(row["a"], row["b"], size) for row in rows])
        best = max(
            ((t, *precision_recall(scores >= t, labels)) for t in np.arange(0.5, 1.0, 0.025)),
            key=lambda item: (item[1] >= 0.97, item[1], item[2]),
        )
        print(f"  word {size}-shingle Jaccard: best precision {best[1]:.3f} (recall {best[2]:.3f}) at {best[0]:.3f}")
    started = time.perf_counter()
    for threshold in (0.85, 0.88, 0.9, 0.905, 0.92, 0.95):
        predicted = np.array([len(lexical_pairs([row["a"], row["b"]], threshold)[0]) == 1 for row in rows])
        precision, recall = precision_recall(predicted, labels)
        print(f"  lexical rule at {threshold}: precision {precision:.3f}, recall {recall:.3f}")
    print(f"  lexical rule: {(time.perf_counter() - started) / (6 * len(rows)) * 1e6:.0f} us per pair")


def pools_part(corpus: str, embedder_name: str) -> None:
    pools = collections.defaultdict(dict)
    with gzip.open(corpus, "rt") as lines:
        for line in lines:
            record = json.loads(line)
            if isinstance(record.get("response"), str) and record["response"].strip():
                pools[record["prompt_id"]].setdefault(identity_key(record["response"]), record.get("score"))
    embedder = load_embedder(embedder_name)
    old_merged = new_merged = 0
    old_worst, new_worst = [], []
    started = time.perf_counter()
    for prompt_id, answers in pools.items():
        texts = list(answers)
        vectors = embedder.encode(texts, batch_size=64)
        rewards = np.array([np.nan if answers[t] is None else answers[t] for t in texts], dtype=np.float64)
        labels = near_duplicate_components(vectors, 0.95)
        old_merged += len(texts) - len(set(labels))
        for label in set(labels):
            members = np.flatnonzero(labels == label)
            if len(members) > 1:
                old_worst.append(float((vectors[members] @ vectors[members].T).min()))
        pool = Pool(
            prompt_id, tuple(f"r{i}" for i in range(len(texts))), np.ones(len(texts), dtype=np.int64), rewards, vectors
        )
        collapsed = collapse_near_duplicates(pool, texts, NearDuplicateRule(0.905))
        new_merged += collapsed.merged
        for representative, merged in collapsed.clusters:
            members = [representative, *merged]
            new_worst.append(float((vectors[members] @ vectors[members].T).min()))
    responses = sum(len(answers) for answers in pools.values())
    print(f"{corpus}: {len(pools)} prompts, {responses} distinct responses ({time.perf_counter() - started:.1f} s)")
    print(
        f"  old (components, cosine >= 0.95): {old_merged} merged; least similar pair in a group: min {min(old_worst, default=float('nan')):.3f}"
    )
    print(
        f"  new (representatives, lexical 0.905): {new_merged} merged; least similar pair (cosine) in a cluster: min {min(new_worst, default=float('nan')):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="../shared/data/vicuna80_fastchat/responses.jsonl.gz")
    parser.add_argument("--embedder", default="minilm-int8")
    args = parser.parse_args()
    pairs_part(args.embedder)
    pools_part(args.corpus, args.embedder)
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
