import re

import pytest

from mrtcurate.report import write_report
from tests.conftest import write_jsonl
from tests.helpers import curate


@pytest.mark.slow
def test_report_is_self_contained_with_every_section(tmp_path):
    rows = [
        {
            "prompt": f"Name a colour, take {i % 8}",
            "response": f"Colour number {i % 5} and shade {i}",
            "score": (i % 7) / 7,
            "model": f"model-{i % 2}",  # two sources: with one, the source panel would say nothing and is left out
        }
        for i in range(160)
    ]
    rows += [{"prompt": "p", "response": ""}, {"prompt": None, "response": "x"}]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    outcome = curate([data], tmp_path / "out", reward_field="score", source_field="model", selector="qd", k=3)
    path = write_report(outcome.output)
    page = (tmp_path / "out" / "report.html").read_text()
    assert path.endswith("report.html")
    headings = (
        "Counts",
        "Rejects",
        "Responses per prompt",
        "Is K &gt; 1 worth it?",
        "Quality and diversity",
        "Which sources",
        "completion length",
        "What each selector keeps",
        "Choosing qd's lambda",
        "Near-duplicates: what was merged into what",
        "Which rewards does the selection keep?",
        "not kept (a few; every one is in dropped/)",
    )
    for heading in headings:
        assert heading in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 8
    assert "<b>holds</b>" in page
    frontier = outcome.manifest["qd_frontier"]
    assert frontier["chosen_lambda"] == 0.2 and len(frontier["points"]) == 11
    assert (
        f"This run's lambda: <b>0.2</b>; recommended for this data: <b>{frontier['recommended_lambda']:g}</b>" in page
    )
    pngs = {
        "rejects.png",
        "pool_sizes.png",
        "planner.png",
        "quality_diversity.png",
        "sources.png",
        "lengths.png",
        "qd_frontier.png",
        "rewards.png",
    }
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == pngs


@pytest.mark.slow
def test_source_and_length_panels_show_what_topk_favours(tmp_path):
    # Two generators: "long" writes long answers that the reward prefers, "short" writes short ones.
    rows = [
        {"prompt": f"q{i % 10}", "response": f"short answer {i}", "score": 0.1, "model": "short"} for i in range(60)
    ]
    rows += [
        {
            "prompt": f"q{i % 10}",
            "response": f"a long and detailed answer number {i} " + "x" * 200,
            "score": 0.9,
            "model": "long",
        }
        for i in range(60)
    ]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    outcome = curate(
        [data], tmp_path / "out", reward_field="score", source_field="model", selector="topk", k=3, near_dup="off"
    )
    profile = outcome.manifest["pool_profile"]
    assert profile["sources"] == {"long": 60, "short": 60} and sum(profile["length_counts"]) == 120
    page = (tmp_path / "out" / "report.html").read_text()
    # topk keeps only "long": its kept share is 100% against a 50% pool share (ratio 2.00), "short" 0%.
    assert "<td>long</td><td>50.0%</td><td>100.0%</td><td>2.00</td>" in page
    assert "<td>short</td><td>50.0%</td><td>0.0%</td><td>0.00</td>" in page
    # The rewards panel: every pool reward sampled (120 < the sample size), each source against what was kept.
    assert sorted(profile["reward_sample"]["long"]) == [0.9] * 60 and profile["reward_sample"]["short"] == [0.1] * 60
    assert "<td>long</td><td>0.9</td><td>0.9</td><td>0.9</td><td>0.9</td>" in page
    assert "<td>short</td><td>0.1</td><td>-</td><td>0.1</td><td>-</td>" in page
    assert (tmp_path / "out" / "rewards.png").stat().st_size > 1000


def test_one_source_gets_no_source_panel_but_keeps_the_length_panel(tmp_path):
    rows = [{"prompt": f"q{i % 4}", "response": f"answer {i}", "score": i % 3} for i in range(24)]
    outcome = curate([write_jsonl(tmp_path / "data.jsonl", rows)], tmp_path / "out", reward_field="score", k=2)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Which sources" not in page and "Does selection shift completion length?" in page
    assert not (tmp_path / "out" / "sources.png").exists() and (tmp_path / "out" / "lengths.png").exists()
    assert outcome.manifest["pool_profile"]["sources"] == {"data.jsonl": 24}
    # A report of an earlier version drew the panel: `mrt report` now removes it, a link to the user's file unfollowed.
    users_file = tmp_path / "users.png"
    users_file.write_bytes(b"the user's file")
    (tmp_path / "out" / "sources.png").symlink_to(users_file)
    (tmp_path / "out" / "rejects.png").write_bytes(b"an earlier report's panel")  # the run rejected nothing
    write_report(outcome.output)
    assert not (tmp_path / "out" / "sources.png").is_symlink() and not (tmp_path / "out" / "sources.png").exists()
    assert not (tmp_path / "out" / "rejects.png").exists() and (tmp_path / "out" / "lengths.png").exists()
    assert users_file.read_bytes() == b"the user's file"


def test_report_replaces_links_in_its_folder_and_never_writes_through_them(tmp_path):
    # Issue 20: `mrt report DIR` wrote through a report.html or PNG that linked to a file outside DIR.
    rows = [{"prompt": f"q{i % 4}", "response": f"answer {i}", "score": i % 3} for i in range(24)]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    outcome = curate([data], tmp_path / "out", reward_field="score", k=2, near_dup="off")
    outside = {name: tmp_path / f"outside-{name}" for name in ("report.html", "pool_sizes.png")}
    for name, target in outside.items():
        target.write_text("the user's file")
        (tmp_path / "out" / name).unlink()
        (tmp_path / "out" / name).symlink_to(target)
    write_report(outcome.output)
    for name, target in outside.items():
        assert target.read_text() == "the user's file"
        assert not (tmp_path / "out" / name).is_symlink() and (tmp_path / "out" / name).stat().st_size > 100


def test_report_on_a_folder_without_a_manifest_or_with_a_damaged_shard_is_one_line(tmp_path):
    # Issue 20: both gave a traceback.
    import pytest

    from mrtcurate.errors import UserError

    with pytest.raises(UserError, match="holds no readable manifest.json"):
        write_report(str(tmp_path))
    data = write_jsonl(tmp_path / "data.jsonl", [{"prompt": f"q{i % 3}", "response": f"a {i}"} for i in range(12)])
    outcome = curate([data], tmp_path / "out", k=2, near_dup="off", plan=False)
    shard = next((tmp_path / "out" / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(UserError, match="cannot be read .*the dataset is damaged"):
        write_report(outcome.output)


def test_an_unchosen_best_answer_shows_its_rank_zero():
    from mrtcurate.report.page import _examples_html

    example = {
        "prompt": "p",
        "pool_size": 2,
        "choices": {},
        "not_kept": [
            {"reason": "not_selected", "completion": "best", "reward": 0.9, "pool_rank": 0, "merged_into": None}
        ],
    }
    assert "<td>not_selected</td><td>0.9</td><td>best</td><td>0</td>" in _examples_html([example])
