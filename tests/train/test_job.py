import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from mrtcurate.errors import UserError
from mrtcurate.schemas.train_config import build_train_config
from mrtcurate.train.data import load_data
from mrtcurate.train.encoding import encode_rows
from mrtcurate.train.evaluation import multi_reference_metrics
from mrtcurate.train.job import SUMMARY_FILE, train

ANSWERS = {
    "name a fruit .": ["apple", "pear", "plum"],
    "name a colour .": ["red", "blue"],
    "name an animal .": ["cat", "dog", "owl"],
}


def write_data(path, extra_rows=()):
    rows = [
        (prompt, answer, 1.0 / len(answers), rank)
        for prompt, answers in ANSWERS.items()
        for rank, answer in enumerate(answers)
    ]
    rows += list(extra_rows)
    pq.write_table(
        pa.table(
            {
                "prompt": [r[0] for r in rows],
                "completion": [r[1] for r in rows],
                "weight": [r[2] for r in rows],
                "rank": [r[3] for r in rows],
            }
        ),
        path,
    )
    return str(path)


def config(tiny_model, data, output, **options):
    values = {
        "data": data,
        "model": tiny_model,
        "output": str(output),
        "lr": 3e-3,
        "batch_size": 4,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "progress": False,
        "save_steps": 1000,
    }
    return build_train_config({**values, **options})


def weights(output):
    return load_file(str(output / "model.safetensors"))


@pytest.mark.slow
def test_loss_falls_and_multi_reference_eval_improves(tiny_model, tmp_path):
    data = write_data(tmp_path / "train.parquet")
    before = multi_reference_metrics(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        encode_rows(load_data(data).rows, AutoTokenizer.from_pretrained(tiny_model), 64),
        0,
        8,
    )
    outcome = train(config(tiny_model, data, tmp_path / "run", eval_data=data, max_steps=60, logging_steps=10))
    summary = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())
    losses = [entry["loss"] for entry in summary["log_history"] if "loss" in entry]
    assert len(losses) == 6 and "train_tokens_per_second" in summary["log_history"][0]
    assert summary["rows"] == 8 and summary["prompts"] == 3 and summary["completion_tokens"] == 16
    assert outcome.train_metrics["train_loss"] < 2.5
    assert outcome.eval_metrics["eval_multi_ref_nll"] < before["multi_ref_nll"] - 1.0
    # The references' entropy (log 3, log 2, log 3 per answer plus a sure end token) bounds the metric below.
    assert outcome.eval_metrics["eval_multi_ref_nll"] > np.mean([np.log(3), np.log(2), np.log(3)]) - 0.05
    assert losses[-1] < losses[0]


def test_zero_weight_row_changes_nothing(tiny_model, tmp_path):
    plain = train(config(tiny_model, write_data(tmp_path / "a.parquet"), tmp_path / "a", max_steps=6)).output
    extra = train(
        config(
            tiny_model,
            write_data(tmp_path / "b.parquet", [("name a fruit .", "dog", 0.0, 9)]),
            tmp_path / "b",
            max_steps=6,
        )
    ).output
    for name, tensor in weights(plain).items():
        torch.testing.assert_close(tensor, weights(extra)[name])


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(tiny_model, tmp_path):
    data = write_data(tmp_path / "train.parquet")
    straight = train(config(tiny_model, data, tmp_path / "straight", max_steps=8)).output
    train(config(tiny_model, data, tmp_path / "resumed", max_steps=4, save_steps=4))
    assert (tmp_path / "resumed" / "checkpoint-4").is_dir()
    outcome = train(config(tiny_model, data, tmp_path / "resumed", max_steps=8, save_steps=4, resume=True))
    assert outcome.summary["resumed_from"].endswith("checkpoint-4")
    for name, tensor in weights(straight).items():
        torch.testing.assert_close(tensor, weights(outcome.output)[name], rtol=1e-5, atol=1e-6)


def test_packed_training_runs_and_counts_sequences(tiny_model, tmp_path):
    outcome = train(
        config(tiny_model, write_data(tmp_path / "t.parquet"), tmp_path / "run", max_steps=3, pack=True, max_length=32)
    )
    assert outcome.summary["sequences"] < outcome.summary["rows"]


def test_lora_trains_only_adapters(tiny_model, tmp_path):
    outcome = train(
        config(
            tiny_model,
            write_data(tmp_path / "t.parquet"),
            tmp_path / "run",
            max_steps=3,
            lora_r=4,
            lora_targets="q_proj,v_proj",
        )
    )
    assert (outcome.output / "adapter_config.json").exists()
    # rank-4 adapters on q and v of 2 layers of width 32: 2 layers x 2 modules x (32*4 + 4*32)
    assert outcome.summary["trainable_parameters"] == 2 * 2 * (32 * 4 + 4 * 32)


def test_multi_reference_metric_matches_hand_computation(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    rows = pa.table(
        {
            "prompt_id": ["f", "f", "f", "c"],
            "prompt": ["name a fruit .", "name a fruit .", "name a fruit .", "name a colour ."],
            "completion": ["apple", "pear plum", "plum", "red"],
            "weight": [1.0] * 4,
            "rank": [2, 0, 1, 0],
        }
    )
    encoded = encode_rows(rows, tokenizer, 64)
    metrics = multi_reference_metrics(model, encoded, tokenizer.pad_token_id, batch_size=3)

    def nll(prompt, completion):  # one sequence at a time, straight from log-softmax
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], return_dict=False
        )
        start = len(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=False
            )
        )
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
        return -sum(logprobs[t - 1, ids[t]].item() for t in range(start, len(ids))), len(ids) - start

    fruit = [nll("name a fruit .", c) for c in ("apple", "pear plum", "plum")]
    colour = nll("name a colour .", "red")
    expected_multi = (np.mean([n for n, _ in fruit]) + colour[0]) / 2
    expected_per_token = (np.mean([n / t for n, t in fruit]) + colour[0] / colour[1]) / 2
    expected_single = (fruit[1][0] + colour[0]) / (fruit[1][1] + colour[1])  # rank 0 of each prompt
    assert metrics["multi_ref_nll"] == pytest.approx(expected_multi, rel=1e-5)
    assert metrics["multi_ref_nll_per_token"] == pytest.approx(expected_per_token, rel=1e-5)
    assert metrics["single_ref_loss"] == pytest.approx(expected_single, rel=1e-5)
    assert metrics["prompts"] == 2 and metrics["references"] == 4


def test_output_guard_and_bad_model(tiny_model, tmp_path):
    data = write_data(tmp_path / "t.parquet")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        train(config(tiny_model, data, tmp_path / "busy", max_steps=1))
    with pytest.raises(UserError, match="no checkpoint"):
        train(config(tiny_model, data, tmp_path / "busy", max_steps=1, resume=True))
    with pytest.raises(UserError, match="cannot load a tokenizer"):
        train(config(str(tmp_path / "no-model"), data, tmp_path / "out", max_steps=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU bf16 is valid")
def test_bf16_without_gpu_is_refused(tiny_model, tmp_path):
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        train(config(tiny_model, write_data(tmp_path / "t.parquet"), tmp_path / "out", max_steps=1, precision="bf16"))


def test_cli_trains_and_reports_errors_in_one_line(tiny_model, tmp_path, capsys):
    from mrtcurate.cli import main

    data = write_data(tmp_path / "t.parquet")
    assert (
        main(
            [
                "-q",
                "train",
                "--data",
                data,
                "--model",
                tiny_model,
                "--output",
                str(tmp_path / "run"),
                "--max-steps",
                "2",
                "--eval-data",
                data,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "eval_multi_ref_nll" in out and "train_loss" in out
    assert (
        main(["train", "--data", str(tmp_path / "missing"), "--model", tiny_model, "--output", str(tmp_path / "x")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_trains_on_a_curated_run_and_records_its_provenance(tiny_model, tmp_path, caplog):
    from tests.conftest import write_jsonl
    from tests.helpers import curate

    rows = [
        {"prompt": prompt, "response": answer, "score": float(i)}
        for prompt, answers in ANSWERS.items()
        for i, answer in enumerate(answers * 2)
    ]
    write_jsonl(tmp_path / "in.jsonl", rows)
    curated = curate([tmp_path / "in.jsonl"], tmp_path / "curated", k=2, reward_field="score")
    with caplog.at_level("WARNING", logger="mrtcurate.train.job"):
        outcome = train(config(tiny_model, curated.output, tmp_path / "run", max_steps=2, eval_data=curated.output))
    assert outcome.summary["data_manifest"]["config_hash"] == curated.manifest["config_hash"]
    assert outcome.summary["rows"] == curated.manifest["counts"]["selected"] == 6
    assert "3 evaluation prompts are also training prompts" in caplog.text


@pytest.mark.slow
def test_two_process_ddp_under_torchrun_on_cpu(tiny_model, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    data = write_data(tmp_path / "t.parquet")
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun) if torchrun.exists() else shutil.which("torchrun"), "--nproc_per_node", "2", "-m", "mrtcurate.cli", "-q", "train",
               "--data", data, "--model", tiny_model, "--output", str(tmp_path / "run"), "--max-steps", "3", "--batch-size", "2"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("mrt train:") == 1  # one process reports
    summary = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())
    # 3 steps x 2 processes x 2 rows: 12 of the 8 rows, so 1.5 epochs
    assert summary["train"]["epoch"] == pytest.approx(1.5)


def test_gradient_accumulation_gives_the_full_batch_update(tiny_model, tmp_path):
    # Rows of unequal weight and length: micro-batch means would weigh the halves wrongly.
    data = write_data(
        tmp_path / "t.parquet",
        [("name a colour .", "red blue green", 0.25, 2), ("name a fruit .", "plum pear", 2.0, 3)],
    )
    options = {"max_steps": 3, "lr_scheduler": "constant", "warmup_ratio": 0.0, "lr": 1e-2}
    full = train(config(tiny_model, data, tmp_path / "full", batch_size=4, grad_accum=1, **options)).output
    accumulated = train(
        config(tiny_model, data, tmp_path / "accumulated", batch_size=2, grad_accum=2, **options)
    ).output
    for name, tensor in weights(full).items():
        torch.testing.assert_close(
            tensor, weights(accumulated)[name], rtol=1e-3, atol=2e-4
        )  # per-micro-batch means: off by 3e-2; Adam magnifies float noise to ~2e-5
