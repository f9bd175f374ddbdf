import re

from mrtcurate.report import write_report
from tests.conftest import write_jsonl
from tests.helpers import curate


def test_report_is_self_contained_with_every_section(tmp_path):
    rows = [{"prompt": f"Name a colour, take {i % 8}", "response": f"Colour number {i % 5} and shade {i}", "score": (i % 7) / 7} for i in range(160)]
    rows += [{"prompt": "p", "response": ""}, {"prompt": None, "response": "x"}]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    outcome = curate([data], tmp_path / "out", reward_field="score", selector="qd", k=3)
    path = write_report(outcome.output)
    page = (tmp_path / "out" / "report.html").read_text()
    assert path.endswith("report.html")
    for heading in ("Counts", "Rejects", "Responses per prompt", "Is K &gt; 1 worth it?", "Quality and diversity", "What each selector keeps"):
        assert heading in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4
    assert "<b>holds</b>" in page
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {"rejects.png", "pool_sizes.png", "planner.png", "quality_diversity.png"}
