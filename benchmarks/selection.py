"""Selector benchmarks, each a ratio against a baseline measured in the same run.

    .venv/bin/python benchmarks/selection.py [--part a,b,c] [--out benchmarks/out]

(a) 2,000 pools of N=64, K=8, D=384: pools/s of qd (lambda 0.5) against apricot's lazy
    FacilityLocationSelection on the same similarity matrices; both per pool, and ours batched.
(b) one pool of N=100,000, K=64, kNN graph with k=32 built from the embeddings: wall time and peak
    memory of ours (FAISS HNSW graph + sparse lazy greedy) against apricot with n_neighbors=32, each
    in a fresh process. Embeddings: 2,000 Gaussian clusters on the unit sphere (real embeddings cluster;
    uniform random 384-d vectors are the worst case for any approximate index).
(c) the quality-diversity frontier on ../shared/data/instructgpt_samples with real MiniLM embeddings:
    mean reward and mean pairwise cosine distance of the selected sets for random, topk and qd at
    lambda 0..1 (K=4 of 12 per prompt), as a table and a PNG.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from mrtcurate.selectors import Pool, QDSettings, build_selector, select
from mrtcurate.selectors.qd import DenseCoverage, FacilityObjective, lazy_greedy, pool_quality, select_qd
from mrtcurate.selectors.qd_batch import facility_greedy_batch
from mrtcurate.vectors.similarity import transform

INSTRUCTGPT = Path(__file__).resolve().parents[2] / "shared" / "data" / "instructgpt_samples" / "responses.jsonl.gz"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def part_a(pools: int = 2000, size: int = 64, k: int = 8, dim: int = 384) -> None:
    from apricot import FacilityLocationSelection

    rng = np.random.default_rng(0)
    embeddings = unit_rows(rng.normal(size=(pools, size, dim)))
    similarity = transform(np.einsum("bnd,bmd->bnm", embeddings, embeddings).astype(np.float64), "cosine")
    rewards = rng.uniform(size=(pools, size))
    quality = np.stack([pool_quality(r, "rank") for r in rewards])
    weights = np.ones((pools, size))
    ties = rng.integers(0, 2**63, size=(pools, size)).astype(np.uint64)

    started = time.perf_counter()
    for b in range(pools):
        lazy_greedy(FacilityObjective(DenseCoverage(similarity[b]), quality[b], weights[b], k, 0.5), ties[b], k)
    per_pool = pools / (time.perf_counter() - started)

    batched = {}
    for threads in (1, 2):
        started = time.perf_counter()
        facility_greedy_batch(similarity, quality, weights, ties, k, 0.5, threads=threads)
        batched[threads] = pools / (time.perf_counter() - started)

    FacilityLocationSelection(k, metric="precomputed", optimizer="lazy", verbose=False).fit(
        similarity[0]
    )  # numba warm-up
    sample = 50
    started = time.perf_counter()
    for b in range(sample):
        FacilityLocationSelection(k, metric="precomputed", optimizer="lazy", verbose=False).fit(similarity[b])
    apricot = sample / (time.perf_counter() - started)
    print(
        f"(a) {pools} pools, N={size}, K={k}: apricot lazy {apricot:,.1f} pools/s (timed on {sample}; apricot 0.6.1 re-JITs its numba kernels on every fit)"
    )
    print(f"    qd lazy, per pool:            {per_pool:,.0f} pools/s = {per_pool / apricot:,.0f}x apricot")
    for threads, rate in batched.items():
        print(f"    qd naive, batched, {threads} thread(s): {rate:,.0f} pools/s = {rate / apricot:,.0f}x apricot")


def _clustered(count: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim))
    return unit_rows(centres[rng.integers(0, 2000, count)] + 0.6 * rng.normal(size=(count, dim)))


def _status_kb(field: str) -> int:
    # VmHWM, not getrusage's ru_maxrss: after exec, ru_maxrss still carries the parent's peak.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


def _timed_child(which: str, embeddings_path: str, k: int, neighbours: int, results) -> None:
    embeddings = np.load(embeddings_path)
    count = len(embeddings)
    rewards = np.random.default_rng(1).uniform(size=count)
    before = _status_kb("VmRSS")
    started = time.perf_counter()
    if which == "ours":
        pool = Pool("big", tuple(f"r{i}" for i in range(count)), np.ones(count, dtype=np.int64), rewards, embeddings)
        chosen = select_qd(pool, k, 0, QDSettings(lam=0.0, neighbours=neighbours)).indices
    else:
        from apricot import FacilityLocationSelection
        from scipy.sparse import csr_matrix
        from sklearn.neighbors import KNeighborsTransformer

        # apricot's own n_neighbors path cannot run here: with metric="cosine" it builds the dense N x N
        # matrix first (37 GB), and with "euclidean" its numba kernels reject SciPy's int64 sparse
        # indices. So this builds the graph the way that path does (sklearn's KNeighborsTransformer),
        # turns distances on unit vectors into max(cos, 0) = 1 - d^2 / 2, casts the indices to int32,
        # and hands apricot the precomputed sparse graph. Graph building is inside the timing, as in ours.
        graph = KNeighborsTransformer(n_neighbors=neighbours, metric="euclidean", mode="distance").fit_transform(
            embeddings
        )
        similarity = np.maximum(1.0 - graph.data**2 / 2.0, 0.0)
        graph = csr_matrix(
            (similarity, graph.indices.astype(np.int32), graph.indptr.astype(np.int32)), shape=graph.shape
        )
        chosen = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy", verbose=False).fit(graph).ranking
    elapsed = time.perf_counter() - started
    peak = _status_kb("VmHWM")
    results.put((which, elapsed, (peak - before) / 1024, len(chosen)))


def part_b(out: Path, count: int = 100_000, k: int = 64, neighbours: int = 32) -> None:
    out.mkdir(parents=True, exist_ok=True)
    embeddings_path = str(out / "clustered_embeddings.npy")
    np.save(embeddings_path, _clustered(count, 384))
    context = mp.get_context("spawn")
    results = context.Queue()
    measured = {}
    for which in ("ours", "apricot"):
        child = context.Process(target=_timed_child, args=(which, embeddings_path, k, neighbours, results))
        child.start()
        child.join()
        name, elapsed, peak_mb, chosen = results.get()
        measured[name] = (elapsed, peak_mb)
        print(
            f"(b) {name:8s} N={count:,}, K={k}, kNN k={neighbours}: {elapsed:6.1f} s, peak memory above the loaded embeddings {peak_mb:,.0f} MB ({chosen} chosen)"
        )
    (ours_s, ours_mb), (apricot_s, apricot_mb) = measured["ours"], measured["apricot"]
    print(f"    apricot / ours: time {apricot_s / ours_s:.1f}x, memory {apricot_mb / max(ours_mb, 1):.1f}x")


def part_c(out: Path, k: int = 4) -> None:
    from mrtcurate.vectors.embedders import load_embedder

    with gzip.open(INSTRUCTGPT, "rt", encoding="utf-8") as source:
        rows = [json.loads(line) for line in source]
    vectors = load_embedder("minilm").encode([row["response"] for row in rows], batch_size=64)
    pools = defaultdict(list)
    for index, row in enumerate(rows):
        pools[row["prompt_id"]].append(index)
    strategies = [("random", None), ("topk", None)] + [("qd", lam) for lam in (0.0, 0.25, 0.5, 0.75, 1.0)]
    table = []
    for name, lam in strategies:
        selector = build_selector(name, QDSettings(lam=lam if lam is not None else 0.5))
        rewards, distances = [], []
        for prompt_id, members in sorted(pools.items()):
            pool = Pool(
                prompt_id,
                tuple(str(i) for i in members),
                np.ones(len(members), dtype=np.int64),
                np.array([rows[i]["score"] if rows[i]["score"] is not None else np.nan for i in members], dtype=float),
                vectors[members],
            )
            chosen = select(selector, pool, k, seed=0).indices
            rewards.append(np.nanmean(pool.rewards[chosen]))
            cosines = pool.embeddings[chosen] @ pool.embeddings[chosen].T
            distances.append(1.0 - cosines[np.triu_indices(len(chosen), 1)].mean())
        label = name if lam is None else f"qd lambda={lam}"
        table.append((label, float(np.mean(rewards)), float(np.mean(distances))))
    print(f"(c) instructgpt_samples, {len(pools)} prompts, K={k} of 12, MiniLM embeddings")
    print(f"    {'strategy':18s} {'mean reward':>12s} {'mean pairwise cosine distance':>31s}")
    for label, reward, distance in table:
        print(f"    {label:18s} {reward:12.4f} {distance:31.4f}")
    _plot_frontier(table, out / "qd_frontier.png")


def _plot_frontier(table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4.5))
    qd = [(d, r) for label, r, d in table if label.startswith("qd")]
    axes.plot([d for d, _ in qd], [r for _, r in qd], "o-", label="qd, lambda 0 to 1")
    for label, reward, distance in table:
        is_qd = label.startswith("qd")
        offset = (5, 4) if is_qd else (5, -12)  # topk and qd at lambda 1 coincide: keep both labels legible
        axes.annotate(
            label.replace("qd lambda=", "λ="), (distance, reward), textcoords="offset points", xytext=offset, fontsize=8
        )
        if not is_qd:
            axes.plot(distance, reward, "s", label=label)
    axes.set_xlabel("mean pairwise cosine distance of the K kept (diversity)")
    axes.set_ylabel("mean reward of the K kept (quality)")
    axes.set_title("Quality-diversity frontier, instructgpt_samples, K=4 of 12")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"    plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="a,b,c")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    parts = set(args.part.split(","))
    if "a" in parts:
        part_a()
    if "b" in parts:
        part_b(args.out)
    if "c" in parts:
        part_c(args.out)


if __name__ == "__main__":
    main()
