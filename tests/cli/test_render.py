from rich.console import Console

from mrtcurate.cli.render import print_bench


def test_bench_table_shows_every_setting_with_spread():
    row = {
        "k": 4,
        "selector": "qd",
        "prompts": 160,
        "budget": 640,
        "kl": 1.653,
        "kl_sd": 0.114,
        "coverage": 0.543,
        "coverage_sd": 0.011,
        "validity": 0.963,
        "validity_sd": None,
    }
    result = {
        "results": [
            {**row, "setting": "equal_prompts"},
            {**row, "setting": "equal_examples", "k": 1, "selector": "random"},
        ],
        "reference": {"untrained": {"kl": 18.9, "coverage": 0.0, "validity": 0.0002}},
        "plot": "out/bench.png",
    }
    console = Console(width=80, record=True)
    print_bench(result, console)
    text = console.export_text()
    assert "1.653±0.11" in text and "0.963 " in text and "examples" in text and "out/bench.png" in text
