from mrtcurate.pipeline import batching
from mrtcurate.pipeline.batching import BatchByKey


def test_batches_fill_to_their_size_and_all_go_once_too_many_items_are_held(monkeypatch):
    monkeypatch.setattr(batching, "BATCH_SIZE", 4)
    monkeypatch.setattr(batching, "MAX_HELD", 10)
    batcher = BatchByKey(lambda item: (item % 5, item) if item >= 0 else None)
    batcher.start_bundle()
    sent = [list(batcher.process(item)) for item in [*range(30), -1]]
    # 30 items over five keys: no key fills 4 before 10 are held, so every batch goes at the 10th, 20th, 30th.
    assert [len(out) for out in sent if out] == [5, 5, 5]
    assert all(not out for index, out in enumerate(sent) if index not in (9, 19, 29))
    leftover = [value.value for value in batcher.finish_bundle()]
    batches = [batch for out in sent for batch in out] + leftover
    assert sorted(item for _, batch in batches for item in batch) == list(range(30))  # -1 does not travel
    assert all(item % 5 == key for key, batch in batches for item in batch)

    batcher.start_bundle()
    full = [out for item in (0, 5, 10, 15) for out in batcher.process(item)]
    assert full == [(0, [0, 5, 10, 15])]  # a batch that fills goes at once
