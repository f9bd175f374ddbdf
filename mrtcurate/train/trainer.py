"""transformers' Trainer with the row-weighted completion-only loss and multi-reference evaluation.

Everything else (mixed precision, gradient accumulation, schedules, checkpoints and resume, DDP
under torchrun or accelerate, logging, the progress bar) is the Trainer's own.
"""

from __future__ import annotations

import torch
from transformers import Trainer

from mrtcurate.train.encoding import Encoded
from mrtcurate.train.evaluation import multi_reference_metrics
from mrtcurate.train.loss import loss_divisor, weighted_token_loss, weighted_token_sum


class WeightedLossTrainer(Trainer):
    """One weighted mean per optimizer step, over every micro-batch of the accumulation window and
    every process: the Trainer hands compute_loss the window's divisor (num_items_in_batch, which we
    define as the summed token weights), so accumulation and DDP give the full-batch update exactly.
    """

    def __init__(self, *args, references: Encoded | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.references = references

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        token_weights = inputs["token_weights"]
        model_inputs = {key: value for key, value in inputs.items() if key not in ("labels", "token_weights")}
        # Without a cache the model reads packed example boundaries from position_ids (it skips that
        # detection whenever a KV cache exists, and forward() creates one unless told not to).
        outputs = model(**model_inputs, use_cache=False)
        if num_items_in_batch is None:  # outside a training step: this micro-batch's own mean
            self.loss_is_scaled_for_ga = False
            loss = weighted_token_loss(outputs.logits, labels, token_weights)
        else:
            self.loss_is_scaled_for_ga = True
            loss = weighted_token_sum(outputs.logits, labels, token_weights) / num_items_in_batch
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.args.world_size  # DDP averages gradients over processes; undo that
        return (loss, outputs) if return_outputs else loss

    def _get_num_items_in_batch(self, batch_samples, device):
        # Overrides the Trainer's count of label tokens with the weighted count our loss divides by.
        total = sum(loss_divisor(batch["token_weights"]) for batch in batch_samples).to(device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            total = self.accelerator.gather(total).sum()
        return total.clamp_min(torch.finfo(torch.float32).tiny)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        if self.references is None:
            return {}
        # Every process scores the whole held-out set: it is small next to training, and the
        # metric then needs no gather of ragged per-prompt groups.
        metrics = multi_reference_metrics(
            self.model,
            self.references,
            self.processing_class.pad_token_id,
            self.args.per_device_eval_batch_size,
            self.accelerator.autocast,
        )
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
