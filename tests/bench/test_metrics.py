import numpy as np
import pytest

from mrtcurate.bench.metrics import answer_metrics
from mrtcurate.bench.tasks import ENTITIES, questions, responses, split_entities


def test_exact_model_has_zero_kl_full_coverage_and_validity():
    p = np.array([0.5, 0.3, 0.2])
    assert answer_metrics(p, np.log(p), np.array([0, 1, 2])) == pytest.approx(
        {"kl": 0.0, "coverage": 1.0, "validity": 1.0}
    )


def test_hand_computed_case():
    # two modes, each phrased two ways; the model leaves 0.1 for invalid strings
    p = np.array([0.3, 0.2, 0.3, 0.2])
    q = np.array([0.5, 0.3, 0.06, 0.04])
    metrics = answer_metrics(p, np.log(q), np.array([0, 0, 1, 1]))
    assert metrics["kl"] == pytest.approx(sum(pi * np.log(pi / qi) for pi, qi in zip(p, q)))
    assert metrics["coverage"] == 0.5  # mode 1 holds 0.1 < half of 1/2
    assert metrics["validity"] == pytest.approx(0.9)


def test_response_strings_carry_exact_probabilities():
    for question in questions(seed=0):
        strings = responses(question)
        assert sum(p for _, p, _ in strings) == pytest.approx(1.0)
        assert len({text for text, _, _ in strings}) == len(strings) == 4 * len(question.answers)


def test_questions_are_uneven_distributions_above_half_uniform():
    for question in questions(seed=0):
        p = np.array(question.probabilities)
        assert p.sum() == pytest.approx(1.0) and len(set(question.answers)) == len(p) >= 5
        assert p[0] > 1.5 * p[-1] and (p >= 0.5 / len(p)).all()
    assert questions(0) == questions(0) and questions(0) != questions(1)


def test_held_out_entities_are_unseen():
    train, held_out = split_entities(40, 8)
    assert not set(train) & set(held_out) and len(held_out) == 8 and set(train) <= set(ENTITIES)
