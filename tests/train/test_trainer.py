import inspect

import torch
from transformers import Trainer

from mrtcurate.train.trainer import WeightedLossTrainer


def test_overridden_hooks_exist_in_the_installed_trainer():
    # The divisor hook is a private Trainer method: if transformers renames it, ours would silently
    # stop being called and the Trainer would divide by a label count instead of the weights.
    for name in ("_get_num_items_in_batch", "compute_loss", "evaluate"):
        assert (
            inspect.signature(getattr(Trainer, name)).parameters.keys()
            == inspect.signature(getattr(WeightedLossTrainer, name)).parameters.keys()
        )
    assert "loss_is_scaled_for_ga" in vars(Trainer)


def test_divisor_is_the_summed_token_weights_after_the_first_position():
    class Args:
        average_tokens_across_devices = True
        world_size = 1

    trainer = WeightedLossTrainer.__new__(WeightedLossTrainer)
    trainer.args = Args()
    batches = [
        {"token_weights": torch.tensor([[9.0, 0.5, 0.5], [9.0, 0.0, 2.0]])},
        {"token_weights": torch.tensor([[9.0, 1.0, 0.0]])},
    ]
    assert trainer._get_num_items_in_batch(batches, torch.device("cpu")).item() == 4.0
