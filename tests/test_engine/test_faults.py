"""A DataLoader worker that dies is reported with what happened, not as a socket error."""
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner

from helpers import REPO_ROOT
from toy_model import TinyModel
from detlab.engine.faults import reported_worker_failures

BAD_INDEX = 6


class DyingDataset(torch.utils.data.Dataset):
    """Sample ``BAD_INDEX`` kills its worker (SIGKILL) or raises, as asked."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict:
        if index == BAD_INDEX:
            if self.how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError(f'sample {index} is broken')
        return dict(inputs=torch.ones(2))


def train(tmp_path, how: str) -> None:
    runner = Runner(
        model=TinyModel(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=DyingDataset(how), batch_size=2, num_workers=1,
                              persistent_workers=False,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=8),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), default_scope='detlab',
        log_level=logging.WARNING, experiment_name=f'dying-{how}-{tmp_path.name}')
    with reported_worker_failures():
        runner.train()


@pytest.mark.slow
def test_killed_worker_is_reported_as_such(tmp_path):
    """In a process of its own: PyTorch's SIGCHLD handler may raise anywhere after."""
    paths = [str(Path(__file__).parent), str(REPO_ROOT / 'tests')]
    code = (f'import sys; sys.path[:0] = {paths!r}\n'
            'import pathlib, test_faults\n'
            f'test_faults.train(pathlib.Path({str(tmp_path)!r}), "kill")\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # Ours when the pipe breaks first, PyTorch's when its own check sees it first.
    assert re.search(r'DataLoader worker .*(died while sending|is killed by signal)', output)


@pytest.mark.slow
def test_dataset_errors_keep_their_own_message(tmp_path):
    with pytest.raises(ValueError, match=f'sample {BAD_INDEX} is broken'):
        train(tmp_path, 'raise')
