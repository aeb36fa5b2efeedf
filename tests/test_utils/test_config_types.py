"""detlab.utils.config_types: the parts checked, and what a test-only tool leaves out."""
from detlab.utils import read_config
from detlab.utils.config_types import unknown_types

from helpers import QUICKSTART, REPO_ROOT


def test_quickstart_has_no_unknown_types():
    assert unknown_types(read_config(str(REPO_ROOT / QUICKSTART))) == []


def test_training_parts_can_be_left_out():
    cfg = read_config(str(REPO_ROOT / QUICKSTART), {
        'optim_wrapper.optimizer.type': 'AdamX', 'param_scheduler.0.type': 'LinerLR',
        'train_dataloader.dataset.pipeline.3.type': 'RandomFlp',
        'test_dataloader.dataset.pipeline.1.type': 'Resise'})
    keys = [problem.split(':')[0] for problem in unknown_types(cfg)]
    assert keys == ['optim_wrapper.optimizer.type', 'param_scheduler[0].type',
                    'train_dataloader.dataset.pipeline[3].type',
                    'test_dataloader.dataset.pipeline[1].type']
    assert [problem.split(':')[0] for problem in unknown_types(cfg, train_parts=False)] == [
        'test_dataloader.dataset.pipeline[1].type']
