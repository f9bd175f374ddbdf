"""`mrt bench`: curate the benchmark corpus with each selector through the real pipeline, train the
same tiny model on each curated set, and score it on held-out prompts against the true distributions.

Two comparisons share the trained models: at equal prompts (P fixed, K = 1 or 4) and at equal
examples (P * K fixed: K = 1 over four times the prompts).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mrtcurate.bench.corpus import write_corpus
from mrtcurate.bench.metrics import answer_metrics, mean_metrics
from mrtcurate.bench.tasks import (
    PHRASINGS,
    Question,
    invalid_answers,
    prompt_text,
    questions,
    responses,
    split_entities,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    train_entities: int  # train prompts = questions x entities
    held_out_entities: int
    samples: int  # raw responses per train prompt (N)
    k: int
    epochs: float  # passes over each curated set: the usual recipe, so more rows also mean more steps
    batch_size: int
    lr: float
    seeds: tuple[int, ...]
    hidden_size: int = 64
    layers: int = 2


QUICK = BenchSettings(
    train_entities=16, held_out_entities=4, samples=16, k=4, epochs=60, batch_size=16, lr=3e-3, seeds=(0,)
)
FULL = BenchSettings(
    train_entities=40, held_out_entities=8, samples=16, k=4, epochs=60, batch_size=16, lr=3e-3, seeds=(0, 1, 2)
)


@dataclass(frozen=True)
class Curation:
    name: str
    corpus: str  # "all" or "subset" (1/K of the train entities)
    selector: str
    k: int


def curations(k: int) -> list[Curation]:
    return [
        Curation("k1-random-subset", "subset", "random", 1),
        Curation(f"k{k}-random-subset", "subset", "random", k),
        Curation(f"k{k}-topk-subset", "subset", "topk", k),
        Curation(f"k{k}-qd-subset", "subset", "qd", k),
        Curation("k1-random-all", "all", "random", 1),
    ]


def comparisons(k: int) -> list[tuple[str, str]]:
    """(setting, curation name): equal prompts uses the subset throughout; equal examples swaps K=1 onto all prompts."""
    at_k = [f"k{k}-random-subset", f"k{k}-topk-subset", f"k{k}-qd-subset"]
    return [
        ("equal_prompts", "k1-random-subset"),
        *(("equal_prompts", n) for n in at_k),
        ("equal_examples", "k1-random-all"),
        *(("equal_examples", n) for n in at_k),
    ]


def run_bench(out: Path, settings: BenchSettings, embedder: str = "minilm") -> dict:
    from transformers.utils import logging as hf_logging

    from mrtcurate.train.tiny import build_tiny_model

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out.mkdir(parents=True, exist_ok=True)
    question_list = questions(seed=0)
    train_entities, held_out = split_entities(settings.train_entities, settings.held_out_entities)
    subset = train_entities[: len(train_entities) // settings.k]
    corpora = {
        "all": _corpus(out / "corpus" / "all.jsonl", train_entities, question_list, settings.samples),
        "subset": _corpus(out / "corpus" / "subset.jsonl", subset, question_list, settings.samples),
    }
    texts = [prompt_text(e, q) for q in question_list for e in train_entities + held_out]
    texts += [a for q in question_list for a in q.answers + tuple(invalid_answers(q))] + list(PHRASINGS)
    model = build_tiny_model(
        out / "initial-model", texts, hidden_size=settings.hidden_size, layers=settings.layers, max_positions=64
    )
    held_out_prompts = [(prompt_text(e, q), q) for q in question_list for e in held_out]

    per_seed: dict[str, list[dict]] = {c.name: [] for c in curations(settings.k)}
    curated_counts: dict[str, dict] = {}
    for seed in settings.seeds:
        for curation in curations(settings.k):
            data = out / "curated" / f"{curation.name}-seed{seed}"
            outcome = _curate(corpora[curation.corpus], data, curation, seed, embedder)
            curated_counts.setdefault(
                curation.name,
                {"prompts": outcome.manifest["counts"]["prompts"], "rows": outcome.manifest["counts"]["selected"]},
            )
            trained = _train(data, model, out / "models" / f"{curation.name}-seed{seed}", settings, seed)
            per_seed[curation.name].append(_score(trained, held_out_prompts))
            log.info("%s seed %d: %s", curation.name, seed, per_seed[curation.name][-1])

    by_name = {c.name: c for c in curations(settings.k)}
    results = []
    for setting, name in comparisons(settings.k):
        curation, scores = by_name[name], per_seed[name]
        row = {
            "setting": setting,
            "k": curation.k,
            "selector": curation.selector,
            "prompts": curated_counts[name]["prompts"],
            "budget": curated_counts[name]["prompts"] * curation.k,
            "rows": curated_counts[name]["rows"],
        }
        for metric in ("kl", "coverage", "validity"):
            values = [score[metric] for score in scores]
            row[metric] = float(np.mean(values))
            row[f"{metric}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        results.append(row)
    return {
        "results": results,
        "reference": {
            "untrained": _score(model, held_out_prompts),
            "truth": {"kl": 0.0, "coverage": 1.0, "validity": 1.0},
        },
        "settings": {
            **asdict(settings),
            "embedder": embedder,
            "questions": len(question_list),
            "held_out_prompts": len(held_out_prompts),
        },
    }


def _corpus(path: Path, entities: list[str], question_list: list[Question], samples: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_corpus(path, entities, question_list, samples, seed=len(entities))
    return path


def _curate(corpus: Path, output: Path, curation: Curation, seed: int, embedder: str):
    from mrtcurate.runs.curate import run
    from mrtcurate.schemas import build_config

    # Near-duplicate collapse is off: distinct answer strings are distinct answers here, however
    # close their embeddings ("3" and "4"), and collapsing them would change the known distribution.
    config = build_config(
        {},
        {
            "input": [str(corpus)], "output": str(output), "selector": curation.selector, "k": curation.k,
            "reward_field": "reward", "seed": seed, "near_dup": "off", "plan": False, "embedder": embedder, "overwrite": True,
        },
    )  # fmt: skip
    return run(config)


def _train(data: Path, model: Path, output: Path, settings: BenchSettings, seed: int) -> Path:
    from mrtcurate.schemas.train_config import build_train_config
    from mrtcurate.train.job import train

    config = build_train_config(
        {
            "data": str(data), "model": str(model), "output": str(output), "epochs": settings.epochs,
            "batch_size": settings.batch_size, "lr": settings.lr, "lr_scheduler": "cosine", "warmup_ratio": 0.05,
            "save_steps": 1_000_000, "logging_steps": 1_000_000, "seed": seed,
            "overwrite": True, "progress": False, "precision": "fp32",
        }
    )  # fmt: skip
    return train(config).output


def _score(model_dir: Path, held_out_prompts: list[tuple[str, Question]]) -> dict[str, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mrtcurate.train.encoding import encode_rows
    from mrtcurate.train.evaluation import completion_nll

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    candidates = [(prompt, responses(q)) for prompt, q in held_out_prompts]
    prompts = [prompt for prompt, strings in candidates for _ in strings]
    answers = [text for _, strings in candidates for text, _, _ in strings]
    table = pa.table(
        {
            "prompt_id": prompts,
            "prompt": prompts,
            "completion": answers,
            "weight": [1.0] * len(answers),
            "rank": [0] * len(answers),
        }
    )
    encoded = encode_rows(table, tokenizer, max_length=64)
    nll, _ = completion_nll(model, encoded.features, tokenizer.pad_token_id, batch_size=256)
    per_prompt, start = [], 0
    for _, strings in candidates:
        stop = start + len(strings)
        probabilities, modes = np.array([p for _, p, _ in strings]), np.array([m for _, _, m in strings])
        per_prompt.append(answer_metrics(probabilities, -nll[start:stop], modes))
        start = stop
    return mean_metrics(per_prompt)
