"""detlab.engine.distributed: DDP on CPUs, leaving a gloo run cleanly."""
import os
import subprocess
import sys

import pytest
import torch

from detlab.engine.distributed import ddp_wrapper_cfg, distributed_process
from helpers import REPO_ROOT, free_port


def test_cpu_ddp_wrapper_has_no_device_ids():
    cfg = ddp_wrapper_cfg()
    assert cfg['type'] == 'MMDistributedDataParallel' and cfg['device_ids'] is None


GLOO_EXIT_SCRIPT = '''
import atexit, os, sys
import torch
from detlab.engine.distributed import distributed_process

marker = sys.argv[1]
with distributed_process():
    torch.distributed.init_process_group('gloo')
    rank = torch.distributed.get_rank()
    atexit.register(lambda: open(f'{marker}.{rank}', 'w').write('exit handlers ran'))
    # DDP keeps the group's worker threads alive past destroy_process_group;
    # the all_gather leaves them a Python-owned tensor to release.
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    gathered = [torch.zeros(2) for _ in range(2)]
    torch.distributed.all_gather(gathered, torch.full((2,), float(rank)))
    print(f'rank {rank} gathered {sum(t.sum().item() for t in gathered)}', end='')
print('never reached after a distributed run')
'''


@pytest.mark.slow
def test_gloo_run_leaves_after_its_exit_handlers(tmp_path):
    script = tmp_path / 'gloo_exit.py'
    script.write_text(GLOO_EXIT_SCRIPT)
    marker = tmp_path / 'marker'
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={free_port()}', str(script), str(marker)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'terminate called' not in output
    # output without a newline was flushed, and finalization never ran
    assert output.count('gathered 2.0') == 2 and 'never reached' not in output
    assert (tmp_path / 'marker.0').read_text() == 'exit handlers ran'
    assert (tmp_path / 'marker.1').read_text() == 'exit handlers ran'


def test_failing_body_raises_and_single_process_returns():
    with pytest.raises(ValueError, match='boom'):
        with distributed_process():
            raise ValueError('boom')
    with distributed_process():
        pass  # no process group: nothing to close, and the caller goes on
    assert not torch.distributed.is_initialized()


def test_more_processes_than_gpus_is_refused_naming_both(monkeypatch):
    from detlab.engine.distributed import init_distributed
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    with pytest.raises(RuntimeError, match=r'2 processes on this machine but 1 CUDA GPU'):
        init_distributed('pytorch')
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '1')
    assert init_distributed('pytorch') == 'cuda'  # mmengine's own launcher starts NCCL
