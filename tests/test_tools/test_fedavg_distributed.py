"""The federated quickstart through tools/train.py, as a user runs it: one process
and two (torchrun, gloo) end with the same global weights, and a run killed
with SIGKILL in the middle of a round and resumed ends as an uninterrupted one.

Everything runs on the CPU, on one thread per process (``OMP_NUM_THREADS=1``), also
on a machine with a GPU: the comparison is bit for bit, which a CPU convolution's
gradient keeps only at one thread count and a GPU's backward (atomic adds, cuDNN's
choice of kernels in each process) does not promise; two processes with CUDA would
also need two GPUs.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from detlab.utils.checkpoint import load_checkpoint_file
from helpers import REPO_ROOT, assert_ok, free_port, run_tool

pytestmark = pytest.mark.slow

FEDAVG = 'configs/quickstart/retinanet_r18_fpn_shapes_fedavg.py'
ROUNDS = 4


def options(data_root) -> list:
    """4 Dirichlet clients over 16 images, all in every round, batches of 2, 2 local
    iterations, 4 rounds."""
    found = [f'train_cfg.rounds={ROUNDS}', f'train_cfg.val_interval={ROUNDS}',
             'train_cfg.local_iters=2', 'train_cfg.clients_per_round=1.0',
             'default_hooks.checkpoint.interval=1',
             'default_hooks.checkpoint.max_keep_ckpts=10', 'default_hooks.logger.interval=1',
             'default_hooks.visualization.draw=False', 'train_dataloader.batch_size=2',
             'train_dataloader.dataset.num_images=16', 'val_dataloader.dataset.num_images=4',
             f'val_evaluator.ann_file={data_root}/annotations/instances_val.json']
    for loader in ('train_dataloader', 'val_dataloader'):
        found.append(f'{loader}.dataset.data_root={data_root}/')
    found += ['val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False']
    return found


def train_args(data_root, work_dir, *extra) -> list:
    return ['tests/test_tools/dist_train_and_dump.py', FEDAVG, '--work-dir', work_dir, *extra,
            '--cfg-options', *options(data_root)]


@pytest.fixture(autouse=True)
def one_cpu_thread(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')  # the tools' processes see no GPU


def final_state(work_dir) -> dict:
    return load_checkpoint_file(str(work_dir / f'iter_{ROUNDS}.pth'))


def test_one_and_two_processes_end_with_identical_global_weights(tmp_path):
    data_root = tmp_path / 'shapes'
    one = assert_ok(run_tool(*train_args(data_root, tmp_path / 'one')))
    assert 'FedAvg: 4 clients, 16 training images.' in one
    assert 'instances per class' in one
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                f'--master_port={free_port()}']
    two = assert_ok(run_tool(*train_args(data_root, tmp_path / 'two', '--launcher', 'pytorch'),
                             launcher=torchrun))
    assert 'Distributed training: True' in two and 'coco/bbox_mAP' in two
    # The same partition is logged by both runs.
    partition = [line for line in one.splitlines() if line.strip().startswith('client ')]
    assert len(partition) == 4 and all(line in two for line in partition)

    ranks = [torch.load(tmp_path / 'two' / f'rank{rank}_weights.pth', weights_only=True)
             for rank in (0, 1)]
    single = torch.load(tmp_path / 'one' / 'rank0_weights.pth', weights_only=True)
    for key, value in single.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f'ranks differ in {key}'
        assert torch.equal(ranks[0][key], value), f'1 and 2 processes differ in {key}'
    checkpoint = final_state(tmp_path / 'two')['state_dict']
    assert all(torch.equal(checkpoint[key], value) for key, value in single.items())


def test_sigkill_in_a_round_and_resume_equals_an_uninterrupted_run(tmp_path):
    data_root, straight, killed = tmp_path / 'shapes', tmp_path / 'straight', tmp_path / 'killed'
    assert_ok(run_tool(*train_args(data_root, straight)))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, *map(str, train_args(data_root, killed))],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / 'iter_2.pth').exists():  # written atomically: complete once there
        assert process.poll() is None, f'training ended (rc {process.returncode}) first'
        assert time.monotonic() < deadline, 'no checkpoint of round 2 in 300 s'
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # in round 3
    process.wait()
    assert not (killed / f'iter_{ROUNDS}.pth').exists()
    output = assert_ok(run_tool(*train_args(data_root, killed, '--resume')))
    assert 'FedAvg: resuming at round' in output

    expected, actual = final_state(straight), final_state(killed)
    assert actual['meta']['iter'] == ROUNDS
    for key, value in expected['state_dict'].items():
        assert torch.equal(actual['state_dict'][key], value), key
    # client_optim_state='keep': every client's AdamW moments came back too.
    kept = expected['fedavg']['client_optim_states']
    assert sorted(kept) == [0, 1, 2, 3]
    torch.testing.assert_close(actual['fedavg']['client_optim_states'], kept, rtol=0, atol=0)
