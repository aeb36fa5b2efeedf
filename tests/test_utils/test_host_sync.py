import torch

from detlab.models.task_modules.assigners.assign_result import candidate_columns
from detlab.utils.host_sync import SyncRecorder


def test_sync_recorder_names_the_syncing_ops_and_the_detlab_line_they_run_from():
    candidate = torch.tensor([[True, False, True], [False, False, True]])
    x = torch.arange(6.).view(2, 3)
    with SyncRecorder() as recorder:
        candidate_columns(candidate)  # compacts with nonzero on the CPU
        candidate_columns(candidate, compact=False)  # every column: no sync
        x[candidate]  # bool-mask indexing, from this test file (outside detlab)
        x.sum(0).cumsum(0)
        torch.repeat_interleave(x[0], 2)  # int repeats: the output size is known
    assert recorder.syncing == {'aten.nonzero', 'aten.index'}
    ((op, site), count), = [(key, n) for key, n in recorder.sites.items()
                            if key[0] == 'aten.nonzero']
    assert count == 1 and site.startswith('detlab/models/task_modules/assigners/assign_result.py:')
    assert recorder.sites[('aten.index', '?')] == 1
    assert {'aten.cumsum', 'aten.sum'} <= recorder.names


def test_sync_recorder_counts_value_reads_and_repeat_interleave_without_output_size():
    counts = torch.tensor([1, 2])
    with SyncRecorder() as recorder:
        bool(counts.sum() > 0)
        torch.repeat_interleave(counts)
        torch.repeat_interleave(counts, output_size=3)
    assert recorder.syncing == {'aten._local_scalar_dense', 'aten.repeat_interleave'}
    assert sum(n for (op, _), n in recorder.sites.items()
               if op == 'aten.repeat_interleave') == 1


def test_sync_recorder_records_the_ops_named_in_also():
    """``also={'aten.lift_fresh'}``: tensors made from host values, which a GPU
    run copies to the device; ops on existing tensors stay unrecorded."""
    x = torch.ones(3)
    with SyncRecorder(also={'aten.lift_fresh'}) as recorder:
        x.new_tensor([1., 2., 3.])
        torch.where(x > 0, x, 0.)
    assert recorder.syncing == {'aten.lift_fresh'}
    with SyncRecorder() as plain:
        x.new_tensor([1., 2., 3.])
    assert not plain.syncing and 'aten.lift_fresh' in plain.names
