"""What the public-shape ingest costs at size.

1. The tree layout's join: the same OpenAssistant-style trees as a message table (one message per row),
   joined by parent id in the job (eight pointer-doubling rounds, then a grouping by root) or grouped by
   their tree id (one shuffle), against the nested export (no join), through the whole job with nothing embedded (`--no-plan --near-dup off`,
   random selection), each in a fresh process: wall time, peak RSS, and that both give the same rows.
2. `mrt inspect` on a large file against reading that whole file (polars `read_ndjson`, the fastest
   whole-file JSONL reader at hand), each in a fresh process: inspect must not grow with the file.

    .venv/bin/python benchmarks/shapes.py [--trees 20000] [--inspect-mb 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPLIES, FOLLOW_UP_REPLIES = 3, 2  # per tree: 1 + 3 + 3 + 3 * 2 = 13 messages, 9 replies, 4 prompts


def tree(index: int) -> dict:
    def message(mid: str, role: str, text: str, rank: int | None, replies: list) -> dict:
        return {
            "message_id": mid,
            "role": role,
            "text": text,
            "rank": rank,
            "lang": "en",
            "deleted": False,
            "review_result": True,
            "replies": replies,
        }

    replies = []
    for r in range(REPLIES):
        follow = [
            message(f"{index}.{r}.f.{f}", "assistant", f"Answer {f} to the follow-up {r} of question {index}.", f, [])
            for f in range(FOLLOW_UP_REPLIES)
        ]
        prompter = message(f"{index}.{r}.f", "prompter", f"Why, for reply {r} of question {index}?", None, follow)
        replies.append(
            message(
                f"{index}.{r}", "assistant", f"Reply {r} to question {index}, with some words to read.", r, [prompter]
            )
        )
    return {
        "message_tree_id": str(index),
        "prompt": message(str(index), "prompter", f"Question number {index}: how does it work?", None, replies),
    }


def flatten(node: dict, parent: str | None, tree_id: str, rows: list) -> None:
    rows.append({**{k: v for k, v in node.items() if k != "replies"}, "parent_id": parent, "message_tree_id": tree_id})
    for child in node["replies"]:
        flatten(child, node["message_id"], tree_id, rows)


def child_run(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (bytes) of a fresh child process, and its stdout."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err.read().decode(errors='replace')[-500:]}")
        return seconds, usage.ru_maxrss * 1024, out.read().decode()


def mrt(*args: str) -> list[str]:
    return [sys.executable, "-m", "mrtcurate.cli", "-q", *args]


def tree_join(trees: int, work: Path) -> None:
    nested, table = work / "trees.jsonl", work / "messages.jsonl"
    with nested.open("w") as nested_file, table.open("w") as table_file:
        for index in range(trees):
            record = tree(index)
            nested_file.write(json.dumps(record) + "\n")
            rows: list = []
            flatten(record["prompt"], None, record["message_tree_id"], rows)
            table_file.writelines(json.dumps(row) + "\n" for row in rows)
    common = ["--no-plan", "--near-dup", "off", "--selector", "random", "--k", "2"]
    variants = {
        "nested trees (no join)": ["--preset", "oasst", "--input", str(nested)],
        "message table, by parent id": [
            "--layout",
            "tree",
            "--message-id-field",
            "message_id",
            "--parent-field",
            "parent_id",
            "--input",
            str(table),
        ],
        "message table, by tree id": ["--preset", "oasst-messages", "--input", str(table)],
    }
    messages = trees * (1 + REPLIES * (2 + FOLLOW_UP_REPLIES))
    print(f"tree layout, {trees:,} trees = {messages:,} messages:")
    baseline = None
    for label, args in variants.items():
        output = work / f"out{len(label)}"
        seconds, peak, _ = child_run(mrt("run", *args, "--output", str(output), *common))
        counts = json.loads((output / "manifest.json").read_text())["counts"]
        ids = sorted(
            (row["prompt_id"], row["response_id"])
            for row in pq.read_table(output / "data", columns=["prompt_id", "response_id"]).to_pylist()
        )
        baseline = baseline or (seconds, counts, ids)
        same = counts == baseline[1] and ids == baseline[2]
        print(
            f"  {label:30s} {seconds:7.1f} s  {seconds / baseline[0]:5.2f}x  {messages / seconds:8,.0f} messages/s  "
            f"peak RSS {peak / 2**30:.2f} GB  same rows and counts as nested: {same}"
        )


def inspect_at_size(megabytes: int, work: Path) -> None:
    def completions(i: int) -> list:
        return [
            {"model": f"m{j}", "response": f"Response {j} to instruction {i}. " * 8, "overall_score": j}
            for j in range(4)
        ]

    small, large = work / "small.jsonl", work / "large.jsonl"
    line_bytes = (
        len(json.dumps({"instruction": "Instruction 0000000, say something useful.", "completions": completions(0)}))
        + 1
    )
    for path, lines in ((small, 2_000), (large, megabytes * 2**20 // line_bytes)):
        with path.open("w") as file:
            file.writelines(
                json.dumps(
                    {"instruction": f"Instruction {i:07d}, say something useful.", "completions": completions(i)}
                )
                + "\n"
                for i in range(lines)
            )
    whole = [sys.executable, "-c", f"import polars as pl; print(pl.read_ndjson({str(large)!r}).height)"]
    read_s, read_peak, _ = child_run(whole)
    print("mrt inspect --preset ultrafeedback (first 200 records of the file) against reading the whole file:")
    for path in (small, large):
        seconds, peak, out = child_run(mrt("inspect", "--preset", "ultrafeedback", "--input", str(path), "--json"))
        assert json.loads(out)["sample"]["candidates"] == 800
        print(f"  inspect {path.stat().st_size / 2**20:7.1f} MB  {seconds:6.2f} s  peak RSS {peak / 2**30:.2f} GB")
    print(
        f"  polars read_ndjson of the {large.stat().st_size / 2**20:.0f} MB file: {read_s:.2f} s, peak RSS {read_peak / 2**30:.2f} GB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", type=int, default=20_000)
    parser.add_argument("--inspect-mb", type=int, default=400)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="mrt-shapes-") as scratch:
        tree_join(args.trees, Path(scratch))
        inspect_at_size(args.inspect_mb, Path(scratch))


if __name__ == "__main__":
    main()
