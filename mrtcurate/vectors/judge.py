"""Scores from an LLM judge (`--judge-url`, `--judge-model`): an OpenAI-compatible chat-completions endpoint (vLLM,
SGLang and hosted APIs all speak it) grades each distinct (prompt, response).

The template is a text with `${prompt}` and `${response}` (Python's string.Template, so the braces of code and
JSON in the texts are left alone); DEFAULT_TEMPLATE asks for a grade from 1 to 10 on a last line "Score: N".
Parsing rule: the last "Score: N" in the reply (any case, N an integer or decimal from 1 to 10); failing that, a
reply that is nothing but such a number. Anything else is unparsed: a null score, counted, never a crash.

Requests run `concurrency` at a time (threads over one httpx client), each with a timeout. A 429, a 5xx, a
timeout or a dropped connection is retried up to MAX_ATTEMPTS times with exponential backoff (Retry-After
when the server gives one, at most MAX_WAIT_S); a response whose every attempt failed is a null score,
counted as failed. A 401, 403 or 404 ends the job in one line: the key, the model or the URL is wrong, and
every other request would fail the same way. The budget counts every attempt, retries included, and is
never exceeded: once spent, the remaining responses get null scores, counted. The API key is read from the
environment variable the user names and goes nowhere but the Authorization header.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import re
import string
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from mrtcurate.errors import UserError

DEFAULT_TEMPLATE = """You are grading one answer to a user's request. Judge how correct, helpful and complete it is.

Request:
${prompt}

Answer:
${response}

Give a short reason, then end with a last line of the form "Score: N", where N is an integer from 1 (useless or wrong) to 10 (excellent)."""

MAX_ATTEMPTS = 5
MAX_WAIT_S = 30.0
_SCORE_LINE = re.compile(r"score\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*")


class JudgeRefused(RuntimeError):
    """The endpoint refused every request the same way (401, 403, 404): a wrong key, model or URL."""


@dataclass(frozen=True)
class JudgeIdentity:
    url: str  # the chat-completions endpoint, without any user:password part
    model: str
    template: str
    template_sha256: str
    key_env: str | None
    concurrency: int
    timeout_s: float
    budget: int | None

    @property
    def cache_key(self) -> str:
        """Scores of one judge: the same endpoint, model and template."""
        return hashlib.sha256(f"{self.url}\0{self.model}\0{self.template_sha256}".encode()).hexdigest()[:16]


def judge_identity(
    url: str,
    model: str,
    template_path: str | None,
    key_env: str | None,
    concurrency: int,
    timeout_s: float,
    budget: int | None,
) -> JudgeIdentity:
    """Checked on the driver before the job: a bad URL, template or key variable fails in one line."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--judge-url {url!r} is not an http(s) URL (for example http://localhost:8000/v1)")
    if parts.username or parts.password:
        raise UserError(
            "--judge-url carries credentials: put the key in an environment variable named by --judge-key-env"
        )
    path = parts.path.rstrip("/")
    endpoint = urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            path if path.endswith("/chat/completions") else f"{path}/chat/completions",
            parts.query,
            "",
        )
    )
    template = DEFAULT_TEMPLATE
    if template_path is not None:
        try:
            with open(template_path, encoding="utf-8") as source:
                template = source.read()
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--judge-template {template_path}: {error.strerror or error}") from None
    missing = {"prompt", "response"} - set(_placeholders(template))
    if missing:
        raise UserError(f"--judge-template has no ${{{min(missing)}}}: the judge would not see it")
    if key_env is not None and not os.environ.get(key_env):
        raise UserError(f"--judge-key-env {key_env}: that environment variable is not set")
    return JudgeIdentity(
        endpoint,
        model,
        template,
        hashlib.sha256(template.encode()).hexdigest(),
        key_env,
        concurrency,
        timeout_s,
        budget,
    )


def _placeholders(template: str) -> list[str]:
    try:
        return string.Template(template).get_identifiers()
    except ValueError as error:
        raise UserError(f"--judge-template: {error}") from None


def parse_score(reply: str) -> float | None:
    """The grade in a reply by the rule above, or None."""
    found = _SCORE_LINE.findall(reply)
    number = found[-1] if found else (match.group(1) if (match := _BARE_NUMBER.fullmatch(reply)) else None)
    if number is None:
        return None
    value = float(number)
    return value if 1.0 <= value <= 10.0 else None


class RequestLedger:
    """The budget shared by every process of one machine's job: the count of requests made, in a file changed
    under an exclusive lock (flock, released by the kernel if a process dies)."""

    def __init__(self, path: str, budget: int):
        self.path = path
        self.budget = budget

    def take(self) -> bool:
        """One request's worth of budget, or False once it is spent."""
        descriptor = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            made = int(os.read(descriptor, 32) or b"0")
            if made >= self.budget:
                return False
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, str(made + 1).encode())
            return True
        finally:
            os.close(descriptor)


class Judge:
    """`score` grades pairs, NaN where there is no grade; `tally` counts requests, tokens and what went wrong."""

    def __init__(self, judge: JudgeIdentity, ledger: RequestLedger | None):
        import httpx  # a dependency of huggingface-hub

        self.identity = judge
        self.ledger = ledger
        headers = {"Content-Type": "application/json"}
        if judge.key_env:
            if not os.environ.get(judge.key_env):
                raise JudgeRefused(
                    f"{judge.key_env}, the judge's key variable, is not set where the job runs (set it on the workers)"
                )
            headers["Authorization"] = f"Bearer {os.environ[judge.key_env]}"
        self.client = httpx.Client(
            headers=headers,
            timeout=judge.timeout_s,
            limits=httpx.Limits(max_connections=judge.concurrency, max_keepalive_connections=judge.concurrency),
        )
        self.pool = ThreadPoolExecutor(max_workers=judge.concurrency, thread_name_prefix="mrt-judge")
        self.template = string.Template(judge.template)
        self.tally: Counter[str] = Counter()
        self.lock = threading.Lock()

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        grades = self.pool.map(self._grade, prompts, responses)
        return np.array([np.nan if grade is None else grade for grade in grades], dtype=np.float64)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def _count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.tally[name] += n

    def _grade(self, prompt: str, response: str) -> float | None:
        import httpx

        body = {
            "model": self.identity.model,
            "messages": [{"role": "user", "content": self.template.safe_substitute(prompt=prompt, response=response)}],
            "temperature": 0,
        }
        for attempt in range(MAX_ATTEMPTS):
            if self.ledger is not None and not self.ledger.take():
                self._count("over_budget")
                return None
            self._count("requests")
            wait = min(MAX_WAIT_S, 0.5 * 2**attempt) * (0.5 + random.random())
            try:
                reply = self.client.post(self.identity.url, json=body)
            except httpx.TransportError:  # timeouts, refused and dropped connections
                time.sleep(wait)
                continue
            if reply.status_code in (401, 403, 404):
                raise JudgeRefused(
                    f"the judge at {self.identity.url} answered {reply.status_code} "
                    f"({'the key was refused' if reply.status_code != 404 else 'no such endpoint or model'})"
                )
            if reply.status_code == 429 or reply.status_code >= 500:
                time.sleep(_retry_after(reply.headers.get("retry-after"), wait))
                continue
            if reply.status_code >= 400:  # this request is bad (too long for the model, say); the others may not be
                break
            return self._read(reply)
        self._count("failed")
        return None

    def _read(self, reply) -> float | None:
        try:
            answer = reply.json()
            usage = answer.get("usage") or {}
            self._count("prompt_tokens", int(usage.get("prompt_tokens") or 0))
            self._count("completion_tokens", int(usage.get("completion_tokens") or 0))
            text = answer["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            text = None
        grade = parse_score(text) if isinstance(text, str) else None
        if grade is None:
            self._count("unparsed")
        return grade


def _retry_after(header: str | None, backoff: float) -> float:
    try:
        return min(MAX_WAIT_S, max(0.0, float(header))) if header else backoff
    except ValueError:
        return backoff
