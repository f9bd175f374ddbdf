"""The validated configuration of `mrt train`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mrtcurate.errors import UserError


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str
    model: str
    output: str
    eval_data: str | None = None
    epochs: float = Field(default=1.0, gt=0.0)
    max_steps: int = Field(default=-1, ge=-1)  # -1: run --epochs
    batch_size: int = Field(default=8, ge=1)  # per device
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=2e-5, gt=0.0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_length: int = Field(default=1024, ge=8)
    pack: bool = False
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 where CUDA supports it
    gradient_checkpointing: bool = False
    lora_r: int = Field(default=0, ge=0)  # 0: full fine-tuning
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    lora_targets: str = "all-linear"
    logging_steps: int = Field(default=10, ge=1)
    save_steps: int = Field(default=500, ge=1)
    save_total_limit: int | None = Field(default=2, ge=1)
    eval_steps: int | None = Field(default=None, ge=1)  # None: evaluate at the end only
    eval_batch_size: int = Field(default=16, ge=1)
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    progress: bool = True

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
