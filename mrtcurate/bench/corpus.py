"""The raw benchmark corpus: N draws per train prompt from the true conditional, some invalid, with a biased reward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrtcurate.bench.tasks import (
    PHRASING_PROBABILITIES,
    PHRASINGS,
    Question,
    invalid_answers,
    prompt_text,
)
from mrtcurate.ids import stable_hash
from mrtcurate.outputs import write_inside

PREFERRED_MODES = 2  # the reward model's favourite answers to each question, chosen by hash
INVALID_RATE = 0.05


def preferred(question: Question) -> set[str]:
    return set(
        sorted(question.answers, key=lambda answer: stable_hash("preferred", question.text, answer))[:PREFERRED_MODES]
    )


def reward(question: Question, answer: str, rng: np.random.Generator) -> float:
    """Biased on purpose: two modes score high whatever their wording, the rest middling, invalid answers low; plus noise."""
    if answer not in question.answers:
        base = 0.0
    elif answer in preferred(question):
        base = 1.0
    else:
        base = 0.5
    return round(base + float(rng.normal(0.0, 0.05)), 4)


def write_corpus(path: Path, entities: list[str], questions: list[Question], samples: int, seed: int) -> int:
    """One JSONL row per draw: prompt, response, reward. Returns the number of rows."""
    rng = np.random.default_rng(seed)
    lines = []
    for question in questions:
        wrong = invalid_answers(question)
        for entity in entities:
            for _ in range(samples):
                if rng.random() < INVALID_RATE:
                    answer = wrong[rng.integers(len(wrong))]
                else:
                    answer = question.answers[rng.choice(len(question.answers), p=question.probabilities)]
                phrasing = PHRASINGS[rng.choice(len(PHRASINGS), p=PHRASING_PROBABILITIES)]
                record = {
                    "prompt": prompt_text(entity, question),
                    "response": phrasing.format(answer=answer),
                    "reward": reward(question, answer, rng),
                }
                lines.append(json.dumps(record) + "\n")
    write_inside(str(path.parent), path.name, "".join(lines).encode())
    return len(lines)
