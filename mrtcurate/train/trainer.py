"""transformers' Trainer with the row-weighted completion-only loss and multi-reference evaluation.

Everything else (mixed precision, gradient accumulation, schedules, checkpoints and resume, DDP
under torchrun or accelerate, logging, the progress bar) is the Trainer's own.
"""

from __future__ import annotations

from transformers import Trainer

from mrtcurate.train.encoding import Encoded
from mrtcurate.train.evaluation import multi_reference_metrics
from mrtcurate.train.loss import weighted_token_loss


class WeightedLossTrainer(Trainer):
    # compute_loss returns a per-micro-batch mean; the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

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
        loss = weighted_token_loss(outputs.logits, labels, token_weights)
        return (loss, outputs) if return_outputs else loss

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
