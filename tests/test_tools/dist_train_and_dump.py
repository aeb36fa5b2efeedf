"""torchrun entry for the multi-process tests: tools/train.py, then every rank
saves the weights it ends with to ``<work_dir>/rank<r>_weights.pth`` and the
number of samples it skipped to ``<work_dir>/rank<r>_skips.txt``."""
import importlib.util
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.model import is_model_wrapper

from detlab.engine.distributed import distributed_process

TRAIN_TOOL = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'tools', 'train.py')
_spec = importlib.util.spec_from_file_location('detlab_tool_train', TRAIN_TOOL)
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

if __name__ == '__main__':
    with distributed_process():
        runner = train.train(train.parse_args())
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(model.state_dict(), osp.join(runner.work_dir, f'rank{get_rank()}_weights.pth'))
        skips = sum(hook.tally.total for hook in runner.hooks if type(hook).__name__ ==
                    'BadSampleHook')
        with open(osp.join(runner.work_dir, f'rank{get_rank()}_skips.txt'), 'w') as file:
            file.write(str(skips))
