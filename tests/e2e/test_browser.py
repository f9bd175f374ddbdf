"""report.html and the explorer in a real browser: headless Chromium (Debian's package) driven by Playwright.
What a person sees: the numbers equal the manifest's, a click shows a pool with the right statuses, the
search filters, no console error, and a text holding markup shows as text and runs nothing. Screenshots
for the README come from here: MRT_SCREENSHOTS=1 writes them to docs/."""

import json
import os
import shutil
from pathlib import Path

import pytest

from mrtcurate.cli import main
from tests.conftest import write_jsonl
from tests.helpers import curate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs"
ATTACK = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 1">'
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or __import__("importlib").util.find_spec("playwright") is None:
        reason = (
            "no Chromium or Playwright here: apt-get install chromium; pip install playwright (.ci/run installs both)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    rows = [
        *[
            {
                "prompt": f"How do I sort a list in Python, case {i}?",
                "response": f"Use sorted() with key number {j} for case {i}",
                "score": j,
                "model": f"model-{j % 3}",
            }
            for i in range(12)
            for j in range(6)
        ],
        {"prompt": f"What is this? {ATTACK}", "response": f"It is {ATTACK} as text", "score": 1, "model": ATTACK},
        {"prompt": f"What is this? {ATTACK}", "response": "Only markup, shown as text", "score": 2, "model": "model-0"},
        {"prompt": "", "response": "no prompt"},
    ]
    data = write_jsonl(folder / "in.jsonl", rows)
    curate([data], folder / "curated", selector="topk", k=3, reward_field="score", source_field="model")
    assert main(["-q", "explore", str(folder / "curated")]) == 0
    return folder / "curated"


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    return page, errors


def screenshot(page, name: str, tmp_path: Path) -> None:
    target = DOCS / name if os.environ.get("MRT_SCREENSHOTS") else tmp_path / name
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target))


def test_the_report_shows_the_manifests_counts_and_runs_nothing_from_the_data(browser, dataset, tmp_path):
    manifest = json.loads((dataset / "manifest.json").read_text())
    page, errors = open_page(browser, dataset / "report.html")
    cells = page.locator("h2:text-is('Counts') + table tr").all_inner_texts()
    shown = dict(line.split("\t") for line in cells[1:])
    assert {name: int(value.replace(",", "")) for name, value in shown.items()} == manifest["counts"]
    assert page.evaluate("window.__pwned") is None and errors == []
    screenshot(page, "report.png", tmp_path)


def test_the_explorer_lists_filters_and_shows_a_pool_with_its_statuses(browser, dataset, tmp_path):
    manifest = json.loads((dataset / "manifest.json").read_text())
    page, errors = open_page(browser, dataset / "explorer.html")
    assert page.inner_text("#sample") == f"{manifest['counts']['prompts']} prompts"
    assert page.locator("#prompts li").count() == manifest["counts"]["prompts"]
    page.fill("#search", "case 7?")
    assert page.locator("#prompts li").count() == 1
    page.click("#prompts li >> nth=0")
    statuses = page.locator("#pool tr[data-status]").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses.count("kept") == 3 and statuses.count("not chosen") == 3
    kept_rewards = page.locator("#pool tr[data-status=kept] td:nth-child(4)").all_inner_texts()
    assert sorted(kept_rewards) == ["3", "4", "5"]  # topk K=3 of rewards 0..5
    assert page.locator("#map circle[data-status=kept]").count() == 3
    screenshot(page, "explorer.png", tmp_path)
    page.click("nav button[data-section=dataset]")
    counts = dict(row.split("\t") for row in page.locator("#counts tr").all_inner_texts())
    assert int(counts["input records"].replace(",", "")) == manifest["counts"]["input_records"]
    assert int(counts["selected"].replace(",", "")) == manifest["counts"]["selected"]
    page.click("nav button[data-section=rejects]")
    assert page.locator("details[data-reason=empty_prompt] summary").inner_text() == "empty_prompt: 1"
    assert errors == []


def test_markup_in_the_data_shows_as_text_and_runs_nothing_in_the_explorer(browser, dataset):
    page, errors = open_page(browser, dataset / "explorer.html")
    page.fill("#search", "what is this")
    page.click("#prompts li >> nth=0")
    assert ATTACK in page.inner_text("#detail h2")
    assert any(ATTACK in text for text in page.locator("#pool td.text").all_inner_texts())
    page.select_option("#source", ATTACK)
    assert page.locator("#prompts li").count() == 1
    assert page.locator("#detail img, #prompts img").count() == 0
    assert page.evaluate("window.__pwned") is None and errors == []
