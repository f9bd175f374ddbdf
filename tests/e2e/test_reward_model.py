"""Proof that `--reward-model` scores do their job, not only that they flow. No reward model ships as a package,
so this test trains one: a tiny Llama sequence classifier on the structured benchmark's tasks (bench/), where
every answer is known to be valid or not, saved with save_pretrained into a temporary folder (never into the
package). Then an unscored corpus of many samples per prompt is curated with it."""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from mrtcurate.bench.corpus import preferred
from mrtcurate.bench.tasks import PHRASINGS, invalid_answers, prompt_text, questions
from tests.conftest import write_jsonl
from tests.helpers import curate, read_rows, shard_bytes

pytestmark = pytest.mark.slow
ENTITIES = ["alice", "bruno", "chloe", "dmitri", "elena", "farid"]
MARGIN = 0.25  # topk's valid share of kept answers over random's


def labelled(seed: int, per_prompt: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for question in questions(0):
        wrong = invalid_answers(question)
        for entity in ENTITIES:
            for _ in range(per_prompt):
                valid = rng.random() < 0.5
                # Valid answers as the benchmark draws them: uneven (Zipf-like) over the question's modes.
                answer = (
                    rng.choices(question.answers, weights=question.probabilities)[0] if valid else rng.choice(wrong)
                )
                # The benchmark's biased judge (bench/corpus.reward): two preferred modes 1, other valid answers 0.5.
                target = 0.0 if not valid else (1.0 if answer in preferred(question) else 0.5)
                response = rng.choice(PHRASINGS).format(answer=answer)
                rows.append(
                    {
                        "prompt": prompt_text(entity, question),
                        "response": response,
                        "valid": valid,
                        "answer": answer,
                        "target": target,
                    }
                )
    return rows


@pytest.fixture(scope="session")
def reward_model(tmp_path_factory) -> Path:
    """Trained once per session. Under xdist each worker has its own session and this module's tests are spread
    over both, so the folder every worker shares (the parent of each worker's base temp) holds the one model, made
    by whichever worker comes first while the other waits on the lock (pytest-xdist's documented pattern): trained
    by both at once, each took 160 s in CI instead of about 15 s, two torch thread pools fighting for two cores."""
    from filelock import FileLock

    folder = tmp_path_factory.getbasetemp().parent / "reward-model"
    with FileLock(f"{folder}.lock"):
        if not folder.exists():  # it appears whole, by a rename
            _train_reward_model(folder)
    return folder


def _train_reward_model(folder: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from mrtcurate.train.tiny import build_tokenizer

    train = labelled(1, 24)
    tokenizer = build_tokenizer(
        [f"{row['prompt']} {row['response']}" for row in train]
        + [f"{w}" for q in questions(0) for w in (*q.answers, *invalid_answers(q))]
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=1,
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}], tokenize=False
        )
        for r in train
    ]
    labels = torch.tensor([r["target"] for r in train])
    for _ in range(2000):  # about 15 s on 2 CPU cores: 87% accuracy on fresh samples
        chosen = torch.randint(len(texts), (32,))
        batch = tokenizer([texts[i] for i in chosen], padding=True, return_tensors="pt", add_special_tokens=False)
        loss = torch.nn.functional.mse_loss(model(**batch).logits[:, 0], labels[chosen])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.config.architectures = ["LlamaForSequenceClassification"]
    # Saved beside the folder, then renamed: a worker finds the folder whole or not at all, even after one that
    # failed mid-save.
    partial = folder.with_name(f"{folder.name}.partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(folder)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    rows = labelled(2, 16)
    truth = {(row["prompt"], row["response"]): (row["valid"], row["answer"]) for row in rows}
    path = write_jsonl(
        tmp_path_factory.mktemp("unscored") / "samples.jsonl",
        [{"prompt": r["prompt"], "response": r["response"]} for r in rows],
    )
    return path, truth


def kept_stats(output: Path, truth: dict) -> tuple[float, float]:
    rows = read_rows(output)
    valid = [truth[(row["prompt"], row["completion"])][0] for row in rows]
    modes: dict[str, set] = {}
    for row in rows:
        ok, answer = truth[(row["prompt"], row["completion"])]
        if ok:
            modes.setdefault(row["prompt"], set()).add(answer)
    return float(np.mean(valid)), float(np.mean([len(found) for found in modes.values()]))


def test_reward_model_scores_make_topk_keep_valid_answers_and_qd_keep_more_modes(reward_model, corpus, tmp_path):
    path, truth = corpus
    options = {"k": 4, "near_dup": "off", "plan": False, "boilerplate_prompts": "off"}
    random_run = curate([path], tmp_path / "random", selector="random", **options)
    topk = curate([path], tmp_path / "topk", selector="topk", reward_model=str(reward_model), **options)
    # qd sees answers apart by meaning (MiniLM), not by shared words: "my pick is apple ." and "my pick is pear ."
    # are near one another under the hashing embedder.
    qd = curate(
        [path], tmp_path / "qd", selector="qd", reward_model=str(reward_model), embedder="minilm", lam=0.5, **options
    )
    random_valid, _ = kept_stats(tmp_path / "random", truth)
    topk_valid, topk_modes = kept_stats(tmp_path / "topk", truth)
    qd_valid, qd_modes = kept_stats(tmp_path / "qd", truth)
    assert topk_valid >= random_valid + MARGIN, (topk_valid, random_valid)
    print(
        f"valid share kept: random {random_valid:.3f}, topk {topk_valid:.3f}, qd {qd_valid:.3f}; valid answer modes per prompt: topk {topk_modes:.2f}, qd {qd_modes:.2f}"
    )
    assert qd_modes > topk_modes, (qd_modes, topk_modes)
    source = topk.manifest["reward_source"]
    assert (
        source["kind"] == "model"
        and source["path"] == str(reward_model)
        and source["scored"] == topk.manifest["counts"]["candidates"]
    )
    assert len(source["config_sha256"]) == 64 and source["dtype"] == "float32"
    assert random_run.manifest["reward_source"] is None
    json.dumps(qd.manifest)
    assert qd_valid > random_valid


def test_a_reward_field_and_a_reward_model_together_need_rescore(reward_model, tmp_path):
    from mrtcurate.errors import UserError

    data = write_jsonl(
        tmp_path / "scored.jsonl",
        [{"prompt": "alice asks : name a fruit .", "response": r, "score": 1.0} for r in ("apple", "pear")],
    )
    with pytest.raises(
        UserError,
        match="--reward-field and --reward-model both give rewards: say which wins with --rescore model or --rescore field",
    ):
        curate([data], tmp_path / "out", reward_field="score", reward_model=str(reward_model))
    kept_field = curate(
        [data], tmp_path / "field", reward_field="score", reward_model=str(reward_model), rescore="field", plan=False
    )
    assert {row["reward"] for row in read_rows(tmp_path / "field")} == {1.0} and kept_field.manifest["reward_source"][
        "scored"
    ] == 0
    curate(
        [data], tmp_path / "model", reward_field="score", reward_model=str(reward_model), rescore="model", plan=False
    )
    assert {row["reward"] for row in read_rows(tmp_path / "model")} != {1.0}


def test_scores_do_not_depend_on_the_batch(reward_model):
    from mrtcurate.vectors.reward_model import RewardModel, identity

    rows = labelled(3, 2)[:40]
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    one = RewardModel(identity(str(reward_model), None), batch_size=1).score(prompts, responses)
    many = RewardModel(identity(str(reward_model), None), batch_size=16).score(prompts[::-1], responses[::-1])[::-1]
    assert np.allclose(one, many, atol=1e-5)


def test_the_run_summary_says_where_the_rewards_came_from(reward_model, corpus, tmp_path, capsys):
    from mrtcurate.cli import main

    path, _ = corpus
    assert (
        main(
            [
                "-q",
                "run",
                "--input",
                str(path),
                "--output",
                str(tmp_path / "out"),
                "--embedder",
                "hashing",
                "--selector",
                "topk",
                "--reward-model",
                str(reward_model),
                "--no-plan",
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    said = " ".join(capsys.readouterr().out.split())
    assert (
        f"rewards from {reward_model} (float32): {manifest['reward_source']['scored']:,} responses scored, 0 of them cut"
        in said
    )


def test_a_second_run_with_the_cache_scores_nothing_and_writes_the_same_shards(reward_model, corpus, tmp_path):
    path, _ = corpus
    options = {"k": 2, "near_dup": "off", "plan": False, "selector": "topk", "reward_model": str(reward_model)}
    cache = tmp_path / "cache"
    first = curate([path], tmp_path / "first", cache=str(cache), **options)
    again = curate([path], tmp_path / "again", cache=str(cache), **options)
    distinct = first.manifest["counts"]["candidates"]
    assert first.manifest["reward_source"]["scored"] == distinct and first.manifest["reward_source"]["from_cache"] == 0
    assert again.manifest["reward_source"]["scored"] == 0 and again.manifest["reward_source"]["from_cache"] == distinct
    assert shard_bytes(tmp_path / "first") == shard_bytes(tmp_path / "again")
    # A retrained model (new weights in the same folder) is another model: nothing comes from the cache.
    (reward_model / "model.safetensors").touch()
    retrained = curate([path], tmp_path / "retrained", cache=str(cache), **options)
    assert retrained.manifest["reward_source"]["from_cache"] == 0
