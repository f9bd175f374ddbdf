"""`mrt train`: a curated dataset and a causal LM in, a fine-tuned model and its metrics out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from mrtcurate import __version__
from mrtcurate.errors import UserError
from mrtcurate.outputs import refuse_holding, replace_folder
from mrtcurate.schemas.train_config import TrainConfig
from mrtcurate.train.collate import WeightedCollator
from mrtcurate.train.data import TrainingData, load_data
from mrtcurate.train.encoding import Encoded, encode_rows, pack

log = logging.getLogger(__name__)

SUMMARY_FILE = "train_summary.json"


@dataclass(frozen=True)
class TrainOutcome:
    output: Path
    train_metrics: dict
    eval_metrics: dict
    summary: dict


@dataclass(frozen=True)
class _Prepared:
    """The data of one training run, encoded for the model."""

    data: TrainingData
    encoded: Encoded
    train_features: list
    references: Encoded | None


def train(config: TrainConfig) -> TrainOutcome:
    try:
        return _train(config)
    finally:
        # The Trainer starts a process group under torchrun and never ends it; Gloo's threads then
        # abort the interpreter at exit now and then ("terminate called without an active exception").
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _refuse_holding_inputs(output: Path, config: TrainConfig) -> None:
    """An output that is, or holds, the data, the eval data or the model would be deleted by --overwrite and
    written into otherwise: refused whatever --overwrite says, as `mrt run` refuses an output holding an input."""
    named = (("--data", config.data), ("--eval-data", config.eval_data), ("--model", config.model))
    refuse_holding(
        str(output),
        [
            (flag, location)
            for flag, location in named
            if location and "://" not in location and Path(location).exists()
        ],
    )


def _train(config: TrainConfig) -> TrainOutcome:
    # transformers and peft load here, not at import: `mrt run` never needs them.
    from transformers import AutoModelForCausalLM, PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    from mrtcurate.train.trainer import WeightedLossTrainer

    output = Path(config.output)
    _prepare_output(output, config)
    tokenizer = _load_tokenizer(config.model)
    prepared = _prepare_data(config, tokenizer)
    bf16, fp16 = _precision(config.precision)
    model = _load_model(AutoModelForCausalLM, config, bf16)
    trainer = WeightedLossTrainer(
        model=model,
        args=_training_arguments(config, output, bf16, fp16, evaluating=prepared.references is not None),
        train_dataset=prepared.train_features,
        eval_dataset=prepared.references.features if prepared.references else None,
        data_collator=WeightedCollator(tokenizer.pad_token_id, packed=config.pack),
        processing_class=tokenizer,
        references=prepared.references,
    )
    if not config.progress:
        trainer.remove_callback(PrinterCallback)  # without a progress bar the Trainer prints every log dict
    checkpoint = get_last_checkpoint(str(output)) if config.resume else None
    if config.resume and checkpoint is None:
        raise UserError(f"--resume: no checkpoint-* directory in {output}")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(output))
    eval_metrics = trainer.evaluate() if prepared.references else {}
    summary = _summary(
        config,
        prepared.data,
        prepared.encoded,
        prepared.train_features,
        model,
        trainer.state.log_history,
        result.metrics,
        eval_metrics,
        checkpoint,
    )
    if trainer.is_world_process_zero():
        (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrainOutcome(output, result.metrics, eval_metrics, summary)


def _prepare_data(config: TrainConfig, tokenizer) -> _Prepared:
    data = load_data(config.data)
    eval_rows = load_data(config.eval_data).rows if config.eval_data else None
    if eval_rows is not None:
        _warn_on_overlap(data.rows, eval_rows)
    encoded = encode_rows(data.rows, tokenizer, config.max_length)
    if not encoded.features:
        raise UserError(f"no training row fits --max-length {config.max_length}: every prompt alone is longer")
    train_features = pack(encoded.features, config.max_length) if config.pack else encoded.features
    references = encode_rows(eval_rows, tokenizer, config.max_length) if eval_rows is not None else None
    log.info(
        "training on %d rows (%d prompts) as %d sequences; %d truncated, %d skipped (prompt longer than --max-length)",
        len(encoded.features),
        len(set(encoded.prompt_ids)),
        len(train_features),
        encoded.truncated,
        encoded.skipped,
    )
    return _Prepared(data, encoded, train_features, references)


def _training_arguments(config: TrainConfig, output: Path, bf16: bool, fp16: bool, evaluating: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5 reads a float below 1 as a ratio of the steps
        weight_decay=config.weight_decay,
        bf16=bf16,
        fp16=fp16,
        **({"gradient_checkpointing": True} if config.gradient_checkpointing else {}),
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if (config.eval_steps and evaluating) else "no",
        eval_steps=config.eval_steps,
        seed=config.seed,
        remove_unused_columns=False,  # token_weights is ours, not the model's
        include_num_input_tokens_seen="non_padding",  # logs train_tokens_per_second
        report_to="none",
        disable_tqdm=not config.progress,
        ddp_find_unused_parameters=False,
        use_cpu=not torch.cuda.is_available(),
    )


def _prepare_output(output: Path, config: TrainConfig) -> None:
    if "://" in str(output):
        raise UserError("--output must be a local directory (copy the trained model to object storage afterwards)")
    _refuse_holding_inputs(output, config)
    if config.resume or not output.exists() or not any(output.iterdir()):
        return
    if not config.overwrite:
        raise UserError(f"{output} is not empty: pass --resume to continue its run or --overwrite to replace it")
    # Under torchrun every process gets here; whichever deletes second finds nothing left to delete.
    replace_folder(str(output))


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load a tokenizer from {name}: {str(error).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise UserError(f"the tokenizer of {name} has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of attention and loss anyway
    return tokenizer


def _precision(choice: str) -> tuple[bool, bool]:
    cuda = torch.cuda.is_available()
    if choice == "auto":
        return cuda and torch.cuda.is_bf16_supported(), False
    if choice in ("bf16", "fp16") and not cuda:
        raise UserError(f"--precision {choice} needs a CUDA GPU; on CPU use fp32 (or auto)")
    return choice == "bf16", choice == "fp16"


def _load_model(auto_class, config: TrainConfig, bf16: bool):
    # Full fine-tuning keeps fp32 master weights under autocast; LoRA freezes the base, so bf16 there halves memory.
    dtype = torch.bfloat16 if (config.lora_r and bf16) else torch.float32
    try:
        model = auto_class.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load a causal LM from {config.model}: {str(error).splitlines()[0]}") from None
    if not config.lora_r:
        return model
    from peft import LoraConfig, get_peft_model

    targets = config.lora_targets if config.lora_targets == "all-linear" else config.lora_targets.split(",")
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    log.info(
        "LoRA r=%d: %d of %d parameters trainable (%.2f%%)", config.lora_r, trainable, total, 100 * trainable / total
    )
    return model


def _warn_on_overlap(rows, eval_rows) -> None:
    shared = set(rows["prompt_id"].to_pylist()) & set(eval_rows["prompt_id"].to_pylist())
    if shared:
        log.warning(
            "%d evaluation prompts are also training prompts: the held-out metrics are not held out for them",
            len(shared),
        )


def _summary(
    config: TrainConfig,
    data: TrainingData,
    encoded: Encoded,
    train_features: list[dict],
    model,
    log_history: list[dict],
    train_metrics: dict,
    eval_metrics: dict,
    checkpoint: str | None,
) -> dict:
    return {
        "mrtcurate_version": __version__,
        "config": config.model_dump(),
        "resumed_from": checkpoint,
        # Provenance: which curated run this model learned from (shards verified against these checksums).
        "data_manifest": {key: data.manifest.get(key) for key in ("config_hash", "created_at", "shards", "counts")}
        if data.manifest
        else None,
        "rows": len(encoded.features),
        "prompts": len(set(encoded.prompt_ids)),
        "rows_truncated": encoded.truncated,
        "rows_skipped": encoded.skipped,
        "sequences": len(train_features),
        "completion_tokens": int(sum(sum(1 for w in f["token_weights"] if w > 0) for f in encoded.features)),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train": train_metrics,
        "eval": eval_metrics,
        "log_history": log_history,
    }
