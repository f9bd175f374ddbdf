"""The judge's parsing rule, template checks and request budget, without a server."""

import multiprocessing

import pytest

from mrtcurate.errors import UserError
from mrtcurate.vectors.judge import DEFAULT_TEMPLATE, RequestLedger, judge_identity, parse_score


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("The answer is right.\nScore: 8", 8.0),
        ("score = 7.5", 7.5),
        ("**Score:** 9", 9.0),
        ("Score: 3 at first... on reflection, Score: 6", 6.0),  # the last one counts
        ("10", 10.0),
        (" 4/10 ", 4.0),
        ("Score: 11", None),  # off the scale
        ("Score: 0", None),
        ("It deserves a seven.", None),
        ("I rate 3 of the 5 claims as true", None),  # numbers in prose are not a grade
        ("", None),
    ],
)
def test_the_parsing_rule(reply, grade):
    assert parse_score(reply) == grade


def test_identity_checks_the_url_the_template_and_the_key_variable(tmp_path, monkeypatch):
    judge = judge_identity("http://localhost:8000/v1/", "m", None, None, 4, 30.0, None)
    assert judge.url == "http://localhost:8000/v1/chat/completions" and judge.template == DEFAULT_TEMPLATE
    same = judge_identity("http://localhost:8000/v1/chat/completions", "m", None, None, 8, 5.0, 10)
    assert same.url == judge.url and same.cache_key == judge.cache_key  # concurrency and budget are not the judge
    assert judge_identity("http://localhost:8000/v1", "other", None, None, 4, 30.0, None).cache_key != judge.cache_key
    with pytest.raises(UserError, match="not an http"):
        judge_identity("localhost:8000", "m", None, None, 4, 30.0, None)
    with pytest.raises(UserError, match="carries credentials"):
        judge_identity("https://user:secret@api.example/v1", "m", None, None, 4, 30.0, None)
    (tmp_path / "t.txt").write_text("grade ${response} for $prompt")
    assert judge_identity("http://h/v1", "m", str(tmp_path / "t.txt"), None, 1, 1.0, None).template.startswith("grade")
    with pytest.raises(UserError, match="No such file"):
        judge_identity("http://h/v1", "m", str(tmp_path / "missing.txt"), None, 1, 1.0, None)
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    with pytest.raises(UserError, match="NO_SUCH_KEY_VARIABLE: that environment variable is not set"):
        judge_identity("http://h/v1", "m", None, "NO_SUCH_KEY_VARIABLE", 1, 1.0, None)


def _take_many(path: str, budget: int, attempts: int, taken) -> None:
    ledger = RequestLedger(path, budget)
    taken.put(sum(ledger.take() for _ in range(attempts)))


def test_the_ledger_never_hands_out_more_than_the_budget_across_processes(tmp_path):
    taken = multiprocessing.Queue()
    path = str(tmp_path / "ledger")
    workers = [multiprocessing.Process(target=_take_many, args=(path, 50, 40, taken)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(taken.get() for _ in workers) == 50
