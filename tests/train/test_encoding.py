from itertools import pairwise

import pyarrow as pa
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mrtcurate.train.collate import WeightedCollator
from mrtcurate.train.encoding import IGNORE, encode_batch, encode_rows, pack
from mrtcurate.train.loss import weighted_token_loss


def rows(*items):
    return pa.table(
        {
            "prompt_id": [f"p{i}" for i, _ in enumerate(items)],
            "prompt": [prompt for prompt, _, _ in items],
            "completion": [completion for _, completion, _ in items],
            "weight": [weight for _, _, weight in items],
            "rank": [0] * len(items),
        }
    )


def test_chat_template_prompt_tokens_carry_no_label_and_no_weight(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoded = encode_rows(rows(("name a fruit .", "apple", 0.5)), tokenizer, 64)
    feature = encoded.features[0]
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["<|user|>", "name", "a", "fruit", ".", "<|end|>", "<|assistant|>", "apple", "<|end|>"]
    assert feature["labels"][:7] == [IGNORE] * 7
    assert feature["labels"][7:] == feature["input_ids"][7:]
    assert feature["token_weights"] == [0.0] * 7 + [0.5, 0.5]


def test_without_chat_template_prompt_newline_completion_eos(tiny_model_without_template):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_without_template)
    [(ids, prompt_length)] = encode_batch(tokenizer, [[{"role": "user", "content": "name a fruit ."}]], ["apple"])
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "name", "a", "fruit", ".", "apple", "<|end|>"]
    assert prompt_length == 5


def test_batched_encoding_matches_apply_chat_template(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    turns = [
        [{"role": "user", "content": "name a fruit ."}],
        [{"role": "system", "content": "pick ."}, {"role": "user", "content": "name a colour ."}],
    ]
    for (ids, prompt_length), conversation, completion in zip(
        encode_batch(tokenizer, turns, ["apple pear", "red"]), turns, ["apple pear", "red"]
    ):
        assert ids == tokenizer.apply_chat_template(
            conversation + [{"role": "assistant", "content": completion}], return_dict=False
        )
        assert prompt_length == len(
            tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_dict=False)
        )


def test_template_whose_prompt_is_no_prefix_falls_back_to_prompt_plus_completion(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    # The generation prompt ends in "." that the rendered assistant turn lacks.
    tokenizer.chat_template = tokenizer.chat_template.replace("<|assistant|>{% endif %}", "<|assistant|> .{% endif %}")
    turns = [{"role": "user", "content": "name a fruit ."}]
    [(ids, prompt_length)] = encode_batch(tokenizer, [turns], ["apple"])
    prompt = tokenizer.apply_chat_template(turns, add_generation_prompt=True, return_dict=False)
    assert prompt[-1] == tokenizer.convert_tokens_to_ids(".") and prompt_length == len(prompt)
    assert ids == prompt + tokenizer.convert_tokens_to_ids(["apple", "<|end|>"])


def test_truncation_and_skipping_at_max_length(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    encoded = encode_rows(
        rows(("name a fruit .", "apple pear plum", 1.0), ("pick a number between 1 and 9 .", "7", 1.0)), tokenizer, 9
    )
    assert encoded.truncated == 1 and encoded.skipped == 1
    assert len(encoded.features) == 1 and len(encoded.features[0]["input_ids"]) == 9


def batch_loss(model, features, packed=False):
    batch = WeightedCollator(0, packed=packed)(features)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_weights")}
    return weighted_token_loss(model(**inputs, use_cache=False).logits, batch["labels"], batch["token_weights"])


def test_zero_weight_row_changes_neither_loss_nor_gradient(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    base = encode_rows(
        rows(("name a fruit .", "apple", 1.0), ("name a colour .", "red blue", 1.0)), tokenizer, 64
    ).features
    extra = encode_rows(rows(("name an animal .", "cat", 0.0)), tokenizer, 64).features
    grads = []
    for features in (base, base + extra):
        model.zero_grad()
        loss = batch_loss(model, features)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert abs(grads[0][0] - grads[1][0]) < 1e-6
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_weight_two_counts_like_two_copies(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    weighted = encode_rows(
        rows(("name a fruit .", "apple", 2.0), ("name a colour .", "red blue", 1.0)), tokenizer, 64
    ).features
    copies = encode_rows(
        rows(("name a fruit .", "apple", 1.0), ("name a fruit .", "apple", 1.0), ("name a colour .", "red blue", 1.0)),
        tokenizer,
        64,
    ).features
    with torch.no_grad():
        assert abs(batch_loss(model, weighted).item() - batch_loss(model, copies).item()) < 1e-5


def test_loss_ignores_logits_at_prompt_positions(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    features = encode_rows(rows(("name a fruit .", "apple", 1.0)), tokenizer, 64).features
    batch = WeightedCollator(0)(features)
    logits = torch.randn(1, batch["input_ids"].shape[1], len(tokenizer))
    loss = weighted_token_loss(logits, batch["labels"], batch["token_weights"])
    changed = logits.clone()
    changed[:, :6] = torch.randn_like(changed[:, :6]) * 10  # positions 0..5 predict prompt tokens 1..6
    assert torch.isclose(loss, weighted_token_loss(changed, batch["labels"], batch["token_weights"]))
    changed[:, 6, 0] += 5.0  # position 6 predicts the first completion token
    assert not torch.isclose(loss, weighted_token_loss(changed, batch["labels"], batch["token_weights"]))


def test_packed_batch_gives_the_unpacked_loss(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    features = encode_rows(
        rows(
            ("name a fruit .", "apple", 0.25),
            ("name a colour .", "red blue green", 1.0),
            ("name an animal .", "owl", 0.5),
            ("pick a number between 1 and 9 .", "7", 2.0),
        ),
        tokenizer,
        64,
    ).features
    packed = pack(features, 24)
    assert len(packed) < len(features)
    assert sorted(len(f["input_ids"]) for f in features) == sorted(
        end - start for f in packed for start, end in _segments(f["position_ids"])
    )
    with torch.no_grad():
        assert abs(batch_loss(model, features).item() - batch_loss(model, packed, packed=True).item()) < 1e-5


def _segments(positions):
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    return list(pairwise(starts))


def test_pack_never_exceeds_max_length():
    features = [{"input_ids": [1] * n, "labels": [1] * n, "token_weights": [1.0] * n} for n in (7, 3, 5, 5, 2, 8, 1)]
    packed = pack(features, 10)
    assert all(len(f["input_ids"]) <= 10 for f in packed)
    assert sum(len(f["input_ids"]) for f in packed) == 31
    assert len(packed) == 4  # 31 tokens need at least 4 bins of 10
