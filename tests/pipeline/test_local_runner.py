"""With no --runner the job runs on the local FnApiRunner, never on a runner downloaded at run time."""

import json

from apache_beam.runners.direct.direct_runner import DirectRunner
from apache_beam.runners.portability import prism_runner
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

from mrtcurate.pipeline.graph import new_pipeline
from tests.conftest import write_jsonl
from tests.helpers import curate


def test_no_runner_option_pins_the_fnapi_runner_and_never_starts_prism(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", lambda *args: started.append(args) or (_ for _ in ()).throw(RuntimeError("prism")))
    monkeypatch.setattr(prism_runner.PrismJobServer, "local_bin", lambda *args: started.append(args) or (_ for _ in ()).throw(RuntimeError("download")), raising=False)
    data = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"q{i % 3}", "response": f"a{i}"} for i in range(12)])
    outcome = curate([data], tmp_path / "out", k=2, near_dup="off", beam_args=["--direct_num_workers=1"])
    assert outcome.manifest["counts"]["selected"] == 6 and not started
    assert isinstance(new_pipeline([]).runner, FnApiRunner)
    assert isinstance(new_pipeline(["--runner=DirectRunner"]).runner, DirectRunner)  # a named runner passes through
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["input_records"] == 12
