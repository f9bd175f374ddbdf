"""The weighted completion-only loss and per-sequence log-likelihoods."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mrtcurate.train.encoding import IGNORE


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each next token, shape (batch, length - 1); 0 where the label is -100."""
    shifted_logits = logits[:, :-1].float()
    shifted_labels = labels[:, 1:]
    nll = F.cross_entropy(
        shifted_logits.reshape(-1, shifted_logits.shape[-1]),
        shifted_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    )
    return nll.view(shifted_labels.shape)


def weighted_token_sum(logits: torch.Tensor, labels: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """Sum of token NLLs times their row's weight (prompt tokens weigh 0)."""
    return (token_nll(logits, labels) * token_weights[:, 1:].to(torch.float32)).sum()


def loss_divisor(token_weights: torch.Tensor) -> torch.Tensor:
    """The weighted count of the tokens that carry loss: the weights of every predicted token."""
    return token_weights[:, 1:].to(torch.float32).sum()


def weighted_token_loss(logits: torch.Tensor, labels: torch.Tensor, token_weights: torch.Tensor) -> torch.Tensor:
    """Sum of token NLLs times their row's weight, over the weighted token count.

    Equal weights give the usual token-mean SFT loss; a row of weight 2 counts like two copies of it;
    a row of weight 0 (and every prompt token, weight 0) contributes nothing, not even to the divisor.
    """
    divisor = loss_divisor(token_weights).clamp_min(torch.finfo(torch.float32).tiny)
    return weighted_token_sum(logits, labels, token_weights) / divisor


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the completion's total NLL in nats and its number of tokens."""
    counted = (labels[:, 1:] != IGNORE).to(torch.float32)
    return (token_nll(logits, labels) * counted).sum(dim=1), counted.sum(dim=1)
