"""`mrt explore`: pools rebuilt from the run's inputs with each candidate's status, on a corpus whose
statuses are known by construction; the kept-only fallback; the sample and its bound."""

import json

import pytest

from mrtcurate.cli import main
from mrtcurate.runs.explore import explore_data
from tests.conftest import write_jsonl
from tests.helpers import curate

FOUR = "The answer to this one is four"
ROWS = [
    *[{"prompt": "p1: add two and two", "response": FOUR, "score": 0.5}] * 3,  # one candidate, three copies
    {"prompt": "p1: add two and two", "response": FOUR + ".", "score": 0.4},  # a near copy: merged into FOUR
    {"prompt": "p1: add two and two", "response": "Seven is the number you want", "score": 0.1},
    {"prompt": "p1: add two and two", "response": "Nine, surely, if you count twice", "score": 0.9},
    {"prompt": "p1: add two and two", "response": "It must be eleven, at a guess", "score": 0.8},
    *[
        {"prompt": f"p{i}: another question", "response": f"a plain answer number {i}", "score": 0.3}
        for i in range(2, 6)
    ],
    *[
        {
            "prompt": f"p{i}: {'another question' if i > 1 else 'add two and two'}",
            "response": "I cannot help with that request today",
            "score": 0.0,
        }
        for i in range(1, 6)
    ],
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore")
    data = write_jsonl(folder / "in.jsonl", ROWS)
    curate([data], folder / "curated", selector="topk", k=2, reward_field="score", boilerplate_prompts="5", plan=False)
    return folder


def test_each_candidate_of_a_pool_has_its_status(dataset):
    found = explore_data(str(dataset / "curated"))
    assert (
        found["pools_from"] == "inputs" and found["dataset"]["prompts_shown"] == found["dataset"]["prompts_total"] == 5
    )
    p1 = next(p for p in found["prompts"] if p["prompt"].startswith("p1"))
    by_text = {c["text"]: c for c in p1["candidates"]}
    assert {text: c["status"] for text, c in by_text.items()} == {
        "Nine, surely, if you count twice": "kept",
        "It must be eleven, at a guess": "kept",
        FOUR + ".": "merged",
        FOUR: "not chosen",
        "Seven is the number you want": "not chosen",
        "I cannot help with that request today": "boilerplate",
    }
    assert by_text[FOUR + "."]["into"] == by_text[FOUR]["id"] and by_text[FOUR]["multiplicity"] == 3
    assert [by_text[t]["rank"] for t in ("Nine, surely, if you count twice", "It must be eleven, at a guess")] == [0, 1]
    manifest = json.loads((dataset / "curated" / "manifest.json").read_text())
    kept_rows = [c for p in found["prompts"] for c in p["candidates"] if c["status"] == "kept"]
    assert len(kept_rows) == manifest["counts"]["selected"]
    assert p1["pool_size"] == 4  # FOUR (3 copies), Seven, Nine, eleven: as the run counted it
    assert sum(1 for c in p1["candidates"] if c["xy"]) == 5  # every candidate in the pool has its point


def test_statuses_from_dropped_agree_with_the_collapse_done_again(dataset, tmp_path):
    # The statuses come from dropped/; a dataset written before that table gets them by redoing the run's
    # near-duplicate collapse. Both must tell the same story.
    import shutil

    older = tmp_path / "older"
    shutil.copytree(dataset / "curated", older)
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["dropped"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(older / "dropped")

    def statuses(found):
        return sorted((c["id"], c["status"], c["into"]) for p in found["prompts"] for c in p["candidates"])

    assert statuses(explore_data(str(older))) == statuses(explore_data(str(dataset / "curated")))


def test_without_its_inputs_the_explorer_shows_the_kept_answers_and_says_why(dataset, tmp_path):
    import shutil

    moved = tmp_path / "copy"
    shutil.copytree(dataset, moved)
    (moved / "in.jsonl").write_text((moved / "in.jsonl").read_text().replace("eleven", "twelve"))
    manifest = json.loads((moved / "curated" / "manifest.json").read_text())
    manifest["inputs"][0]["path"] = str(moved / "in.jsonl")
    (moved / "curated" / "manifest.json").write_text(json.dumps(manifest))
    found = explore_data(str(moved / "curated"))
    assert found["pools_from"] is None and "changed since the run" in found["why_kept_only"]
    assert {c["status"] for p in found["prompts"] for c in p["candidates"]} == {"kept"}


def test_a_large_dataset_is_sampled_with_its_largest_and_named_prompts_and_says_so(tmp_path, capsys):
    rows = [
        {"prompt": f"question {i}", "response": f"answer {j} to {i}"}
        for i in range(300)
        for j in range(1 + (i % 7 == 0) * 5)
    ]
    data = write_jsonl(tmp_path / "in.jsonl", rows)
    curate([data], tmp_path / "curated", k=2, plan=False, near_dup="off")
    named = json.loads((tmp_path / "curated" / "manifest.json").read_text())  # any prompt id of the run
    every = sorted(
        {row["prompt_id"] for row in __import__("polars").read_parquet(tmp_path / "curated" / "data").to_dicts()}
    )
    assert (
        main(
            [
                "explore",
                str(tmp_path / "curated"),
                "--prompts",
                "40",
                "--prompt-id",
                every[-1],
                "--out",
                str(tmp_path / "page.html"),
            ]
        )
        == 0
    )
    assert "a sample of 40 of 300 prompts" in capsys.readouterr().out
    page = (tmp_path / "page.html").read_text()
    payload = json.loads(page.split('id="explorer-data">')[1].split("</script>")[0])
    shown = {p["id"] for p in payload["prompts"]}
    assert len(shown) == 40 and every[-1] in shown and named["counts"]["prompts"] == 300
    assert sum(p["pool_size"] == 6 for p in payload["prompts"]) >= 4  # the largest pools are in


def test_with_dropped_texts_the_pools_come_from_the_dataset_without_its_inputs(dataset, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", ROWS)
    options = {"selector": "topk", "k": 2, "reward_field": "score", "boilerplate_prompts": "5", "plan": False}
    curate([data], tmp_path / "curated", dropped_texts=True, **options)
    data.unlink()  # the inputs are gone: the dataset alone must do
    alone = explore_data(str(tmp_path / "curated"))
    assert alone["pools_from"] == "dropped" and alone["why_kept_only"] is None

    def pools(found):
        return sorted(
            (c["id"], c["status"], c["into"], c["multiplicity"], c["text"])
            for p in found["prompts"]
            for c in p["candidates"]
        )

    assert pools(alone) == pools(explore_data(str(dataset / "curated")))


def test_a_large_pool_embeds_only_the_points_its_map_draws(tmp_path, monkeypatch):
    """Statuses come from dropped/, so the map's MAP_POINTS members are all the explorer embeds of a pool of 1,000
    (it had embedded every member: a hot pool of 200,000 for a map of 300 points)."""
    from mrtcurate.runs import explore
    from mrtcurate.vectors.embedders import load_embedder

    embedded = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def encode(self, texts, **options):
            embedded.extend(texts)
            return self.inner.encode(texts, **options)

    monkeypatch.setattr(explore, "load_embedder", lambda *args: Counting(load_embedder(*args)))
    rows = [{"prompt": "one busy prompt", "response": f"answer {i} about topic {i % 37}"} for i in range(1_000)]
    curate([write_jsonl(tmp_path / "in.jsonl", rows)], tmp_path / "curated", k=3, plan=False, near_dup="off")
    (pool,) = explore.explore_data(str(tmp_path / "curated"))["prompts"]
    assert len(pool["candidates"]) == 1_000 and len(embedded) == explore.MAP_POINTS
    drawn = [candidate for candidate in pool["candidates"] if candidate["xy"] is not None]
    assert len(drawn) == explore.MAP_POINTS and {candidate["text"] for candidate in drawn} == set(embedded)
    assert all(candidate["xy"] is not None for candidate in pool["candidates"] if candidate["status"] == "kept")
    assert max(abs(value) for candidate in drawn for value in candidate["xy"]) == 1.0
