"""Controlled simulations that check the planner's theory and the selectors' bias.

variance: prompts with known sigma_b^2 and sigma_w^2; the Monte-Carlo variance of the mean-gradient
  estimator over a grid of (P, K), equal-budget diagonals P*K = const included, against
  sigma_b^2 / P + sigma_w^2 / (P K).
selection: prompts whose answers fall into modes with known probabilities, a reward that prefers
  rare modes, pools of N samples and K kept by the real selectors. For a categorical model q (uniform
  here), the gradient of the expected log-likelihood in its logits is p - q; the kept samples estimate
  it as p_hat - q with p_hat their weighted empirical distribution.
"""

from __future__ import annotations

import numpy as np

from mrtcurate.selectors import Pool, QDSettings, build_selector, select


def variance_grid(
    sigma_b2: float = 1.0, sigma_w2: float = 4.0, dim: int = 4, trials: int = 2000, seed: int = 0
) -> dict:
    rng = np.random.default_rng(seed)
    grid = [(p, k) for p in (8, 32, 128) for k in (1, 2, 4, 8, 16)]
    grid += [(p, 256 // p) for p in (256, 64, 16) if (p, 256 // p) not in grid]  # P*K = 256 diagonal
    rows = []
    for prompts, k in grid:
        means = rng.normal(scale=np.sqrt(sigma_b2 / dim), size=(trials, prompts, 1, dim))
        noise = rng.normal(scale=np.sqrt(sigma_w2 / dim), size=(trials, prompts, k, dim))
        estimates = (means + noise).mean(axis=(1, 2))  # (trials, dim): the mean gradient per trial
        observed = float(estimates.var(axis=0, ddof=1).sum())
        predicted = sigma_b2 / prompts + sigma_w2 / (prompts * k)
        rows.append({"P": prompts, "K": k, "budget": prompts * k, "predicted": predicted, "observed": observed})
    errors = [abs(row["observed"] - row["predicted"]) / row["predicted"] for row in rows]
    return {
        "sigma_b2": sigma_b2,
        "sigma_w2": sigma_w2,
        "trials": trials,
        "grid": rows,
        "max_relative_error": float(max(errors)),
    }


def _mode_pools(rng, probabilities, preferred, pool_size, dim=32, spread=0.05):
    modes = len(probabilities)
    centres = rng.normal(size=(modes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    answers = rng.choice(modes, size=pool_size, p=probabilities)
    embeddings = centres[answers] + spread * rng.normal(size=(pool_size, dim))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    rewards = np.where(np.isin(answers, preferred), 1.0, 0.0) + 0.05 * rng.uniform(size=pool_size)
    return answers, embeddings.astype(np.float32), rewards


def selection_bias(
    prompts: int = 200,
    trials: int = 5,
    pool_size: int = 32,
    k: int = 4,
    probabilities: tuple[float, ...] = (0.55, 0.25, 0.12, 0.05, 0.03),
    preferred: tuple[int, ...] = (3, 4),
    seed: int = 0,
) -> dict:
    """Per strategy: cosine between estimated and true gradient, norm of the estimator's bias (mean over
    prompts x trials of p_hat, minus p), and mode coverage. The reward prefers the two rarest modes:
    the case where reward-only selection points the gradient away from the true objective."""
    p = np.asarray(probabilities)
    q = np.full(len(p), 1.0 / len(p))
    true_gradient = p - q
    strategies = {
        "random": build_selector("random"),
        "topk": build_selector("topk"),
        "qd": build_selector("qd", QDSettings(lam=0.5)),
    }
    rng = np.random.default_rng(seed)
    results = {}
    draws = [_mode_pools(rng, p, list(preferred), pool_size) for _ in range(prompts * trials)]
    for name, selector in strategies.items():
        cosines, coverage, empirical = [], [], []
        for index, (answers, embeddings, rewards) in enumerate(draws):
            pool = Pool(
                f"prompt{index}",
                tuple(f"r{i}" for i in range(pool_size)),
                np.ones(pool_size, dtype=np.int64),
                rewards,
                embeddings,
            )
            selection = select(selector, pool, k, seed=index)
            weights = selection.draws / selection.draws.sum()
            p_hat = np.bincount(answers[selection.indices], weights=weights, minlength=len(p))
            estimate = p_hat - q
            cosines.append(_cosine(estimate, true_gradient))
            coverage.append(len(set(answers[selection.indices])) / len(p))
            empirical.append(p_hat)
        results[name] = {
            "grad_cosine": float(np.mean(cosines)),
            "mean_grad_cosine": _cosine(np.mean(empirical, axis=0) - q, true_gradient),
            "bias_norm": float(np.linalg.norm(np.mean(empirical, axis=0) - p)),
            "mode_coverage": float(np.mean(coverage)),
        }
    return {
        "probabilities": list(probabilities),
        "preferred_modes": list(preferred),
        "pool_size": pool_size,
        "k": k,
        "prompts": prompts,
        "trials": trials,
        "strategies": results,
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def random_bias_by_trials(trial_counts=(1, 4, 16, 64), prompts: int = 50, seed: int = 0) -> list[tuple[int, float]]:
    """Bias norm of Random-K-of-N as the number of draws grows: it shrinks towards 0 (unbiasedness)."""
    return [
        (trials, selection_bias(prompts=prompts, trials=trials, seed=seed)["strategies"]["random"]["bias_norm"])
        for trials in trial_counts
    ]
