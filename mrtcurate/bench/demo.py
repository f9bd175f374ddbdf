"""A built-in sample corpus: prompts with several valid answer modes of known, uneven probabilities,
a reward that prefers some modes, exact and near duplicates, and a sprinkling of bad records."""

from __future__ import annotations

import gzip
import json
import os
import random

from mrtcurate.bench.tasks import Question, answer_set
from mrtcurate.errors import UserError
from mrtcurate.outputs import write_inside
from mrtcurate.schemas import RunConfig

_LEXICON = {
    "fruit": "apple apricot avocado banana blackberry blueberry cherry clementine coconut cranberry date fig grape "
    "grapefruit guava kiwi kumquat lemon lime lychee mango melon nectarine orange papaya peach pear persimmon "
    "pineapple plum pomegranate quince raspberry strawberry tangerine watermelon",
    "animal": "alligator antelope badger bear beaver bison buffalo camel cat cheetah cougar coyote deer dog donkey "
    "eagle elephant elk falcon ferret fox frog gazelle giraffe goat gorilla hamster hare hedgehog hippo horse "
    "hyena jaguar kangaroo koala lemur leopard lion llama lynx moose mouse otter owl panda panther parrot pig "
    "rabbit raccoon rat rhino seal shark sheep skunk sloth snake squirrel tiger turtle walrus weasel wolf zebra",
    "country": "argentina australia austria belgium bolivia brazil bulgaria canada chile china colombia croatia cuba "
    "denmark ecuador egypt estonia finland france germany ghana greece hungary iceland india indonesia iran "
    "ireland israel italy jamaica japan kenya latvia lithuania malaysia mexico morocco nepal netherlands nigeria "
    "norway pakistan panama peru poland portugal romania russia senegal serbia spain sweden switzerland "
    "thailand tunisia turkey uganda ukraine uruguay venezuela vietnam zambia",
    "instrument": "accordion bagpipes banjo bassoon bongo cello clarinet cornet cymbal drum flute guitar harmonica "
    "harp harpsichord horn kazoo lute mandolin marimba oboe organ piano piccolo recorder saxophone sitar "
    "trombone trumpet tuba ukulele viola violin xylophone zither",
}
_SYNONYMS = {
    "happy": "glad joyful cheerful content delighted merry",
    "big": "large huge vast enormous giant immense",
    "fast": "quick rapid swift speedy brisk hasty",
    "smart": "clever bright intelligent sharp brilliant wise",
    "angry": "mad furious irate livid cross annoyed",
    "small": "little tiny minute petite miniature compact",
    "tired": "weary exhausted sleepy drained fatigued worn",
    "cold": "chilly icy freezing frosty cool wintry",
    "brave": "bold courageous fearless daring heroic valiant",
    "calm": "peaceful serene tranquil still placid quiet",
}
_TEMPLATES = ("{x}", "{x}.", "How about {x}?", "One answer is {x}.", "I would say {x}.", "Sure! {x}.")
RESPONSES_PER_PROMPT = 12
_ZIPF_EXPONENT = 1.0  # a few modes dominate, as in the demo's story


def _questions(rng: random.Random, seed: int) -> list[Question]:
    found = []
    for category, words in _LEXICON.items():
        by_letter: dict[str, list[str]] = {}
        for word in words.split():
            by_letter.setdefault(word[0], []).append(word.capitalize())
        for letter, options in sorted(by_letter.items()):
            if len(options) >= 2:
                found.append(
                    answer_set(
                        "name",
                        f"Name a {category} that starts with the letter {letter.upper()}.",
                        options,
                        seed,
                        _ZIPF_EXPONENT,
                    )
                )
    for word, synonyms in _SYNONYMS.items():
        found.append(answer_set("synonym", f"Give a synonym of '{word}'.", synonyms.split(), seed, _ZIPF_EXPONENT))
    for _ in range(250):
        low = rng.randint(1, 50)
        high = low + rng.randint(3, 9)
        found.append(
            answer_set(
                "number",
                f"Pick a number between {low} and {high}.",
                [str(n) for n in range(low, high + 1)],
                seed,
                _ZIPF_EXPONENT,
            )
        )
    return found


def sample_records(seed: int = 0) -> list[str]:
    """JSONL lines: flat layout with `score` rewards; uneven mode probabilities; ~2% bad records."""
    rng = random.Random(seed)
    lines = []
    for question in _questions(rng, seed):
        preferred = set(
            rng.sample(question.answers, max(1, len(question.answers) // 3))
        )  # the reward model's favourites
        for _ in range(RESPONSES_PER_PROMPT):
            answer = rng.choices(question.answers, weights=question.probabilities)[0]
            response = rng.choice(_TEMPLATES).format(x=answer)
            score = round((0.8 if answer in preferred else 0.3) + rng.uniform(-0.1, 0.1), 3)
            lines.append(json.dumps({"prompt": question.text, "response": response, "score": score}))
    bad = [
        '{"prompt": "Name a colour.", "response": "Blue"',  # truncated JSON
        json.dumps({"prompt": "Name a colour.", "response": "   "}),
        json.dumps({"prompt": "Name a colour.", "response": "Red", "score": "very good"}),
        '{"prompt": "Name a colour.", "response": "Green", "score": NaN}',
        json.dumps({"response": "Yellow", "score": 0.5}),
        json.dumps({"prompt": "Name a colour.", "response": ["Pink"], "score": 0.5}),
        json.dumps(["not", "an", "object"]),
    ]
    for line in bad * 8:
        lines.insert(rng.randrange(len(lines)), line)
    return lines


def sample_bytes(seed: int = 0) -> bytes:
    """The sample corpus, gzipped with no timestamp: the same bytes every time, so a rerun recognises its own file."""
    return gzip.compress(("\n".join(sample_records(seed)) + "\n").encode("utf-8"), mtime=0)


def write_sample(path: str, seed: int = 0) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    write_inside(folder, os.path.basename(path), sample_bytes(seed))


def demo_config(directory: str, embedder: str, overwrite: bool = False) -> RunConfig:
    """The demo's run in `directory`. It replaces only what an earlier demo there wrote (its own sample, a
    dataset curated from it); anything else at those names needs `overwrite`."""
    sample = os.path.join(directory, "sample.jsonl.gz")
    curated = os.path.join(directory, "curated")
    if not overwrite:
        _refuse_foreign(sample, curated)
    write_sample(sample)
    return RunConfig.from_options(
        {
            "input": [sample],
            "output": curated,
            "layout": "flat",
            "reward_field": "score",
            "embedder": embedder,
            "overwrite": True,
        }
    )


def _refuse_foreign(sample: str, curated: str) -> None:
    if os.path.lexists(sample) and (
        not os.path.isfile(sample) or os.path.islink(sample) or not _is_demo_sample(sample)
    ):
        raise UserError(
            f"{sample} exists and is not the demo's sample; pass --overwrite to replace it, or another --dir"
        )
    if os.path.lexists(curated) and (
        os.path.islink(curated)
        or not os.path.isdir(curated)
        or (os.listdir(curated) and not _is_demo_output(curated, sample))
    ):
        raise UserError(
            f"{curated} exists and is not an earlier demo's output; pass --overwrite to replace it, or another --dir"
        )


def _is_demo_sample(path: str) -> bool:
    """By content, not gzip bytes: an older demo's sample carries another gzip timestamp."""
    try:
        with gzip.open(path, "rb") as source:
            return source.read() == gzip.decompress(sample_bytes())
    except (OSError, EOFError):
        return False


def _is_demo_output(curated: str, sample: str) -> bool:
    try:
        with open(os.path.join(curated, "manifest.json"), encoding="utf-8") as source:
            inputs = json.load(source)["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return [entry.get("path") for entry in inputs] == [os.path.realpath(sample)]
