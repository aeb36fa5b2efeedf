"""Two processes on the CPU (gloo, torchrun) train, validate and draw like one.

The quickstart runs a few iterations with a validation and drawing inside the
run; the ranks must end with identical weights, and the metrics of two
processes must equal those of one process on the same checkpoint.
"""
import re
import sys

import pytest
import torch

from helpers import QUICKSTART, assert_ok, free_port, run_tool, tiny_run_options

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available() and torch.cuda.device_count() < 2,
    reason='two training processes on a machine with CUDA need two GPUs (one each, NCCL); '
    'this one has one')

MAX_ITERS = 4
NUM_VAL = 7  # odd: the sampler pads rank 1's shard, and the gathered results must drop it
TRAIN_IMAGES = 16  # as tiny_run_options asks
BAD_IMAGES = [f'{index:06d}.jpg' for index in range(1, TRAIN_IMAGES, 2)]  # half of them


def torchrun(num_processes: int = 2) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={num_processes}',
            f'--master_port={free_port()}']


def coco_metrics(output: str, loop: str) -> dict:
    """The ``coco/...`` values of the last ``Iter(<loop>)`` summary line."""
    lines = [line for line in output.splitlines() if f'Iter({loop})' in line and 'coco/' in line]
    assert lines, f'no {loop} metrics in the output:\n{output[-3000:]}'
    found = dict(re.findall(r'(coco/\w+): (-?[0-9.]+)', lines[-1]))
    assert 'coco/bbox_mAP' in found
    return {key: float(value) for key, value in found.items()}


def options(data_root) -> list:
    return [*tiny_run_options(data_root, MAX_ITERS), f'val_dataloader.dataset.num_images={NUM_VAL}',
            f'test_dataloader.dataset.num_images={NUM_VAL}', 'val_dataloader.batch_size=2',
            'test_dataloader.batch_size=2', 'default_hooks.visualization.interval=1']


@pytest.fixture(scope='module')
def two_process_run(tmp_path_factory):
    from detlab.datasets.shapes.writer import generate_shapes
    root = tmp_path_factory.mktemp('dist')
    data_root, work_dir = root / 'shapes', root / 'work'
    # The training images the run would generate, some made unreadable, to be skipped.
    generate_shapes(str(data_root), 'train', TRAIN_IMAGES, seed=0)
    for name in BAD_IMAGES:
        (data_root / 'train' / name).write_bytes(b'not a jpeg')
    result = run_tool('tests/test_tools/dist_train_and_dump.py', QUICKSTART, '--launcher',
                      'pytorch', '--work-dir', work_dir, '--cfg-options', *options(data_root),
                      'train_dataloader.dataset.skip_bad_samples=True', launcher=torchrun())
    return dict(data_root=data_root, work_dir=work_dir, output=assert_ok(result))


@pytest.mark.slow
def test_two_processes_train_validate_and_draw(two_process_run):
    output, work_dir = two_process_run['output'], two_process_run['work_dir']
    assert 'Distributed training: True' in output and "dist_cfg: {'backend': 'gloo'}" in output
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in output
    assert (work_dir / f'iter_{MAX_ITERS}.pth').is_file()
    drawn = list(work_dir.glob('*/vis_data/vis_image/*.png'))
    assert drawn, 'validation drew nothing'


@pytest.mark.slow
def test_skips_of_both_ranks_are_summarised_once(two_process_run):
    """Each rank skips some of the bad images; rank 0 warns once with their sum."""
    output, work_dir = two_process_run['output'], two_process_run['work_dir']
    per_rank = [int((work_dir / f'rank{rank}_skips.txt').read_text()) for rank in (0, 1)]
    # A rank draws 16 images from two shuffles; all 16 good: 1 chance in 10^8.
    assert all(per_rank), f'a rank skipped nothing: {per_rank}'
    summaries = re.findall(r'BadSampleWarning: Training skipped (\d+) sample', output)
    assert summaries == [str(sum(per_rank))], output[-3000:]
    assert re.search(rf'{sum(per_rank)} x FileNotFoundError, from [2-8] different', output)


@pytest.mark.slow
def test_ranks_end_with_identical_weights(two_process_run):
    work_dir = two_process_run['work_dir']
    rank0 = torch.load(work_dir / 'rank0_weights.pth', weights_only=True)
    rank1 = torch.load(work_dir / 'rank1_weights.pth', weights_only=True)
    assert rank0.keys() == rank1.keys()
    different = [key for key in rank0 if not torch.equal(rank0[key], rank1[key])]
    assert not different, f'ranks differ in {different[:5]}'
    assert any('running_mean' in key for key in rank0)  # BN statistics were compared too


@pytest.mark.slow
def test_two_process_metrics_equal_one_process_metrics(two_process_run, monkeypatch):
    work_dir, data_root = two_process_run['work_dir'], two_process_run['data_root']
    in_run = coco_metrics(two_process_run['output'], 'val')
    checkpoint = work_dir / f'iter_{MAX_ITERS}.pth'
    one = coco_metrics(assert_ok(run_tool(
        'tools/test.py', QUICKSTART, checkpoint, '--work-dir', work_dir / 'test1',
        '--cfg-options', *options(data_root))), 'test')
    monkeypatch.setenv('PORT', str(free_port()))
    two = coco_metrics(assert_ok(run_tool(
        'tools/dist_test.sh', QUICKSTART, checkpoint, 2, '--work-dir', work_dir / 'test2',
        '--cfg-options', *options(data_root), launcher=['bash'])), 'test')
    assert one == two == in_run
