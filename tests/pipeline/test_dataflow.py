"""The job graph on Google Cloud Dataflow, built offline with --dry_run=True: gs:// in and out,
the named stages present, no local path in what would be submitted, and worker code that pickles."""

import pickle

import apache_beam as beam
import pytest
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions

from mrtcurate.ingest.files import ResolvedInputs
from mrtcurate.ingest.layouts import FieldMapping
from mrtcurate.pipeline.graph import build
from mrtcurate.schemas import InputFile, build_config

pytest.importorskip("apache_beam.runners.dataflow.dataflow_runner")
pytest.importorskip("google.cloud.dataflow_v1beta3")

OUTPUT = "gs://mrt-bucket/curated/run1"
INPUTS = ResolvedInputs(
    files=(
        InputFile("gs://mrt-bucket/raw/part-0.jsonl.gz", "jsonl", 1000, "crc32c:x"),
        InputFile("gs://mrt-bucket/raw/part-1.parquet", "parquet", 2000, "crc32c:y"),
    ),
    mapping=FieldMapping(layout="flat", reward="score"),
    with_messages=False,
)


def dry_run_job(tmp_path, inputs=INPUTS, **options):
    config = build_config(
        {}, {"input": ["gs://mrt-bucket/raw/*"], "output": OUTPUT, "reward_field": "score", **options}
    )
    pipeline = beam.Pipeline(
        options=PipelineOptions(
            [
                "--runner=DataflowRunner",
                "--project=mrt-project",
                "--region=us-central1",
                "--temp_location=gs://mrt-bucket/tmp",
                "--dry_run=True",
            ]
        )
    )
    build(pipeline, config, inputs, OUTPUT)  # object stores are written in place
    pipeline.run()
    return pipeline.runner.job


# The default job embeds in Select (graph.embeds_in_select); with --k auto the planner needs the vectors before it.
@pytest.mark.parametrize(
    ("options", "stages", "absent"),
    [
        ({}, ("Read", "Planner", "Select", "Write", "Manifest"), ("MergeExactDuplicates", "Embed")),
        (
            {"selector": "qd", "merge_prompts": 0.9, "k": "auto"},
            ("Read", "MergePrompts", "MergeExactDuplicates", "Embed", "Planner", "Select", "Write", "Manifest"),
            (),
        ),
    ],
)
def test_dataflow_job_graph_builds_offline(tmp_path, options, stages, absent):
    job = dry_run_job(tmp_path, **options)
    names = {transform.unique_name for transform in job.proto_pipeline.components.transforms.values()}
    assert set(stages) <= names
    assert not set(absent) & names
    # Dataflow's shuffle streams: the batches cross it, not references to segment files (pipeline/spill.py).
    assert not any("WriteSegments" in name or "SpillRows" in name for name in names)
    # The transforms' payloads (our pickled DoFns and their arguments). The environments list Beam's own
    # staged artifacts, which name the local temp files they are uploaded from, and are left out.
    components = job.proto_pipeline.components
    submitted = (
        b"".join(transform.SerializeToString() for transform in components.transforms.values())
        + str(job.json()).encode()
    )
    for local in (b"/work/", b"/tmp/", b"/root/", str(tmp_path).encode()):
        assert local not in submitted


def test_the_message_table_join_builds_on_dataflow(tmp_path):
    tree = FieldMapping(
        layout="tree", text_key="text", reward="rank", reward_order="lower", message_id="message_id", parent="parent_id"
    )
    job = dry_run_job(tmp_path, ResolvedInputs(INPUTS.files, tree, with_messages=True), preset="oasst-messages")
    names = {transform.unique_name for transform in job.proto_pipeline.components.transforms.values()}
    assert {"Read/JoinMessageTrees/Join0", "Read/JoinMessageTrees/Join7", "Read/JoinMessageTrees/WalkTree"} <= names


def test_worker_code_pickles_and_round_trips():
    from mrtcurate.pipeline.embed import SentenceEmbeddingHandler
    from mrtcurate.pipeline.embed_responses import BucketEmbedder
    from mrtcurate.pipeline.read import _ParseSplit
    from mrtcurate.pipeline.select import _SelectBucket, _SelectStage
    from mrtcurate.pipeline.trees import _WalkTree
    from mrtcurate.schemas.config import EmbeddingSettings, GroupingSettings, SelectionSettings
    from mrtcurate.schemas.records import RecordLocator

    for worker_object in (
        _ParseSplit(INPUTS.mapping, 1000, {file.path: 0 for file in INPUTS.files}),
        _SelectBucket(
            _SelectStage(
                SelectionSettings(selector="qd"),
                GroupingSettings(near_dup_embedding=0.95),
                EmbeddingSettings(embedder="hashing"),
                with_messages=False,
                reward_sign=-1.0,
                locator=RecordLocator(tuple(file.path for file in INPUTS.files)),
            ),
            BucketEmbedder(EmbeddingSettings(embedder="hashing")),
        ),
        SentenceEmbeddingHandler(EmbeddingSettings(embedder="minilm-int8", max_tokens=128)),
        _WalkTree(FieldMapping(layout="tree", message_id="message_id", parent="parent_id")),
    ):
        restored = pickler.loads(pickler.dumps(worker_object))
        assert type(restored) is type(worker_object)
        # Plain pickle too: nothing closes over local state that only dill or cloudpickle could carry.
        assert type(pickle.loads(pickle.dumps(worker_object))) is type(worker_object)
