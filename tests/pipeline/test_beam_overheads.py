import gc
import inspect
import weakref

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, WorkerOptions
from apache_beam.transforms import core, userstate
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

import mrtcurate.pipeline  # noqa: F401  (installs the memos, as every run does)
from mrtcurate.pipeline import beam_overheads
from tests.helpers import collect_to, collected, local_pipeline


class _Counting(beam.DoFn):
    SEEN = ReadModifyWriteStateSpec("seen", VarIntCoder())

    def process(self, element, seen=beam.DoFn.StateParam(SEEN)):  # noqa: B008  (Beam's way to ask for state)
        count = (seen.read() or 0) + 1
        seen.write(count)
        yield element[0], count


def test_the_memos_are_installed_where_beam_looks_them_up():
    assert core.get_signature is beam_overheads.remembered_signature
    assert PipelineOptions.view_as is beam_overheads.remembered_view


def test_signatures_are_beams_for_functions_and_bound_methods_of_any_instance():
    def scale(x, factor=2, *rest, key=None):
        return x * factor

    first, second = _Counting(), _Counting()
    assert beam_overheads.remembered_signature(scale) == inspect.signature(scale)
    assert beam_overheads.remembered_signature(first.process) == inspect.signature(first.process)
    assert beam_overheads.remembered_signature(second.process) == inspect.signature(second.process)
    assert list(inspect.signature(second.process).parameters) == ["element", "seen"]  # self is not in it


def test_a_finished_pipelines_functions_are_not_kept():
    # Not by the memo's size: an earlier test's functions, collected meanwhile, changed it (flaky under xdist).
    function = lambda x: x
    beam_overheads.remembered_signature(function)
    assert function in beam_overheads._function_signatures
    gone = weakref.ref(function)
    del function
    gc.collect()
    assert gone() is None


def test_views_share_their_values_as_beams_do():
    options = PipelineOptions(["--num_workers=3"])
    view = options.view_as(WorkerOptions)
    assert options.view_as(WorkerOptions) is view and view.num_workers == 3
    view.num_workers = 5
    assert options.view_as(WorkerOptions).num_workers == 5 and options.get_all_options()["num_workers"] == 5
    options.view_as(StandardOptions).runner = "DirectRunner"
    assert PipelineOptions(["--num_workers=3"]).view_as(StandardOptions).runner is None  # another options object


def test_state_is_still_found_and_kept_per_key(tmp_path):
    assert userstate.is_stateful_dofn(_Counting()) and not userstate.is_stateful_dofn(beam.Map(str).fn)
    with local_pipeline() as pipeline:
        counted = pipeline | beam.Create([("a", 0), ("b", 0), ("a", 0)]) | beam.ParDo(_Counting())
        collect_to(counted, tmp_path / "counted.json", "Counted")
    assert sorted(map(tuple, collected(tmp_path / "counted.json"))) == [("a", 1), ("a", 2), ("b", 1)]
