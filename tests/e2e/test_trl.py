"""TRL reads the published dataset as it is: `load_dataset(DIR)["train"]` into SFTTrainer, a few steps of a tiny
randomly initialised model, in prompt-completion form and, where the input was chat, with `messages`."""

from pathlib import Path

import pytest

from mrtcurate.train.tiny import build_tiny_model
from tests.conftest import write_jsonl
from tests.helpers import curate

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "shapes"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("shape", ["flat", "sharegpt"])
def test_sft_trainer_trains_on_the_curated_train_split(tmp_path, shape):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if shape == "flat":
        data = write_jsonl(
            tmp_path / "in.jsonl",
            [{"prompt": f"name a fruit {i % 4}", "response": f"apple pear {i}"} for i in range(24)],
        )
        curate([data], tmp_path / "curated", k=2)
    else:
        curate([SHAPES / "sharegpt.jsonl"], tmp_path / "curated", preset="sharegpt")
    model = build_tiny_model(
        tmp_path / "model",
        ["name a fruit apple pear what is the capital ocean 0 1 2 3 4 5 6 7 8 9"],
        hidden_size=32,
        layers=2,
        heads=2,
    )
    train = load_dataset(str(tmp_path / "curated"))["train"]
    assert {"prompt", "completion", "weight"} <= set(train.column_names)
    assert ("messages" in train.column_names) == (shape == "sharegpt")
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(str(model)),
        processing_class=AutoTokenizer.from_pretrained(str(model)),
        train_dataset=train,
        args=SFTConfig(
            output_dir=str(tmp_path / "sft"),
            max_steps=3,
            per_device_train_batch_size=2,
            report_to="none",
            use_cpu=True,
            logging_steps=1,
            save_strategy="no",
        ),
    )
    outcome = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert outcome.global_step == 3 and len(losses) == 3 and all(loss > 0 for loss in losses)
