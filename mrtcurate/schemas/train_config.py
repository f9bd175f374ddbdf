"""The validated configuration of `mrt train`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mrtcurate.errors import UserError


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str = Field(
        json_schema_extra={"metavar": "DIR"},
        description="a dataset written by mrt run (manifest and checksums verified), or Parquet with prompt/completion",
    )
    model: str = Field(
        json_schema_extra={"metavar": "NAME_OR_PATH"},
        description="a causal LM: local path or name (loaded offline unless HF_HUB_OFFLINE=0)",
    )
    output: str = Field(
        json_schema_extra={"metavar": "DIR"},
        description="local directory for checkpoints, the final model and train_summary.json",
    )
    eval_data: str | None = Field(
        None,
        json_schema_extra={"metavar": "DIR"},
        description="held-out prompts with several references each: multi-reference NLL",
    )
    epochs: float = Field(1.0, gt=0.0, description="passes over the data")
    max_steps: int = Field(-1, ge=-1, description="optimizer steps; overrides --epochs (-1: off)")
    batch_size: int = Field(8, ge=1, description="sequences per device per step")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    lr: float = Field(2e-5, gt=0.0, description="peak learning rate")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="learning-rate schedule"
    )
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="share of steps warming up")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    max_length: int = Field(1024, ge=8, description="tokens per example or packed sequence; longer completions are cut")
    pack: bool = Field(False, description="pack examples into --max-length sequences")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on CUDA GPUs that support it, else fp32"
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")
    lora_r: int = Field(0, ge=0, description="LoRA rank; 0 fine-tunes every weight")
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the LoRA branch")
    lora_targets: str = Field("all-linear", description="all-linear or comma-separated module names")
    logging_steps: int = Field(10, ge=1, description="log every N steps")
    save_steps: int = Field(500, ge=1, description="checkpoint every N steps")
    save_total_limit: int | None = Field(2, ge=1, description="checkpoints kept")
    eval_steps: int | None = Field(
        None, ge=1, description="evaluate every N steps as well as at the end (none: at the end only)"
    )
    eval_batch_size: int = Field(16, ge=1, description="sequences per device per evaluation step")
    resume: bool = Field(False, description="continue from the last checkpoint in --output")
    overwrite: bool = Field(False, description="replace a non-empty --output")
    seed: int = Field(0, description="seed of initialisation, shuffling and dropout")
    progress: bool = Field(
        True, description="progress bars (not a flag: `mrt -q` turns them off)", json_schema_extra={"flag": False}
    )

    @model_validator(mode="after")
    def _resume_or_overwrite(self) -> TrainConfig:
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the run in --output; --overwrite would delete it")
        return self


def build_train_config(values: dict) -> TrainConfig:
    try:
        return TrainConfig(**{key: value for key, value in values.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors())
        raise UserError(f"invalid training configuration: {problems}") from None
