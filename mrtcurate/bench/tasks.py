"""Task families whose conditional answer distribution is known exactly.

A prompt is "{entity} asks : {question}" and its answer distribution depends on the question only,
so held-out prompts (entities never seen in training) test generalisation, not recall. Every
question has 5-8 valid answers (modes) with uneven (Zipf-like) probabilities in a seeded order, and
every answer is phrased in one of a few ways, as real responses to one prompt differ in wording: a
response is a (mode, phrasing) pair drawn independently, so its true probability is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrtcurate.ids import stable_hash

ZIPF_EXPONENT = 0.7  # uneven, yet every answer stays above half of the uniform share

CATEGORIES = {
    "fruit": ["apple", "pear", "plum", "mango", "cherry", "lemon", "peach", "grape"],
    "animal": ["cat", "dog", "horse", "tiger", "otter", "rabbit", "wolf", "eagle"],
    "colour": ["red", "blue", "green", "yellow", "purple", "orange", "pink"],
    "metal": ["iron", "copper", "silver", "gold", "tin", "zinc"],
    "instrument": ["piano", "violin", "guitar", "flute", "drum", "cello", "harp"],
    "vegetable": ["carrot", "potato", "onion", "pea", "leek", "cabbage"],
}
NUMBER_RANGES = [(1, 6), (4, 10), (12, 18), (21, 27)]
SYNONYMS = {
    "big": ["large", "huge", "vast", "giant", "massive", "great"],
    "small": ["tiny", "little", "minor", "petite", "slight"],
    "fast": ["quick", "rapid", "swift", "speedy", "brisk"],
    "happy": ["glad", "joyful", "cheerful", "merry", "content", "jolly"],
    "smart": ["clever", "bright", "wise", "sharp", "brainy"],
    "cold": ["chilly", "cool", "icy", "frosty", "freezing"],
}
PHRASINGS = ("{answer}", "my pick is {answer} .", "i say {answer} .", "{answer} , i think .")
PHRASING_PROBABILITIES = (0.4, 0.3, 0.2, 0.1)
ENTITIES = [
    "alice", "bruno", "chloe", "dmitri", "elena", "farid", "greta", "hiro", "ingrid", "jamal", "keiko", "liam",
    "mira", "nadia", "oscar", "priya", "quentin", "rosa", "sven", "tariq", "uma", "viktor", "wanda", "xavier",
    "yara", "zane", "amara", "boris", "carmen", "dario", "esther", "felix", "gloria", "hector", "isla", "jonas",
    "kira", "lorenzo", "maya", "nico", "olga", "pablo", "quinn", "rahul", "selma", "tomas", "ursula", "vera",
    "willem", "ximena", "yusuf", "zora",
]  # fmt: skip


@dataclass(frozen=True)
class Question:
    family: str
    text: str
    answers: tuple[str, ...]
    probabilities: tuple[float, ...]


def questions(seed: int) -> list[Question]:
    found = []
    for category, words in CATEGORIES.items():
        found.append(answer_set("name", f"name a {category} .", words, seed))
    for low, high in NUMBER_RANGES:
        found.append(
            answer_set(
                "number", f"pick a number between {low} and {high} .", [str(n) for n in range(low, high + 1)], seed
            )
        )
    for word, synonyms in SYNONYMS.items():
        found.append(answer_set("synonym", f"give a synonym of {word} .", synonyms, seed))
    return found


def answer_set(family: str, text: str, answers: list[str], seed: int, exponent: float = ZIPF_EXPONENT) -> Question:
    """A prompt with several valid answers (modes) of uneven, Zipf-like probabilities in a seeded order: the
    one generator of multi-mode answer sets, for the benchmark and the demo corpus alike."""
    ordered = sorted(answers, key=lambda answer: stable_hash(seed, text, answer))
    weights = 1.0 / np.arange(1, len(ordered) + 1) ** exponent
    return Question(family, text, tuple(ordered), tuple(float(w) for w in weights / weights.sum()))


def responses(question: Question) -> list[tuple[str, float, int]]:
    """Every valid response string with its true probability and the index of its mode."""
    return [
        (phrasing.format(answer=answer), p_answer * p_phrasing, mode)
        for mode, (answer, p_answer) in enumerate(zip(question.answers, question.probabilities))
        for phrasing, p_phrasing in zip(PHRASINGS, PHRASING_PROBABILITIES)
    ]


def prompt_text(entity: str, question: Question) -> str:
    return f"{entity} asks : {question.text}"


def split_entities(train: int, held_out: int) -> tuple[list[str], list[str]]:
    if train + held_out > len(ENTITIES):
        raise ValueError(f"at most {len(ENTITIES)} entities in all")
    return ENTITIES[:train], ENTITIES[len(ENTITIES) - held_out :]


def invalid_answers(question: Question) -> list[str]:
    """Answers from other families: plausible words, wrong for this question."""
    pool = [w for words in CATEGORIES.values() for w in words] + [w for words in SYNONYMS.values() for w in words]
    return sorted(w for w in pool if w not in question.answers)
