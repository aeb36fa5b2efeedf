"""The RTMDet quickstart trains through tools/train.py on tiny generated data: Mosaic/MixUp,
then the second pipeline from switch_epoch on, EMA weights validated and saved."""
import pytest
import torch
from mmengine.runner import CheckpointLoader

from detlab.utils import register_all_modules
from helpers import NUM_VAL, assert_ok, run_tool

pytestmark = pytest.mark.slow


def test_rtmdet_quickstart_switches_pipeline_and_saves_ema_weights(tmp_path):
    data_root = tmp_path / 'shapes'
    ann_val = f'{data_root}/annotations/instances_val.json'
    options = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
               'custom_hooks.1.switch_epoch=1', 'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=4', f'val_evaluator.ann_file={ann_val}',
               f'test_evaluator.ann_file={ann_val}', 'train_dataloader.dataset.num_images=8',
               f'val_dataloader.dataset.num_images={NUM_VAL}',
               f'test_dataloader.dataset.num_images={NUM_VAL}']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
                    f'{loader}.dataset.data_root={data_root}/']
    output = assert_ok(run_tool('tools/train.py', 'configs/quickstart/rtmdet_tiny_shapes.py',
                                '--work-dir', tmp_path / 'work', '--cfg-options', *options))
    assert 'the training pipeline switches at epoch 2' in output
    assert 'loss_cls' in output and 'bbox_mAP' in output
    register_all_modules()  # detlab's safe checkpoint loading
    checkpoint = CheckpointLoader.load_checkpoint(str(tmp_path / 'work' / 'epoch_2.pth'),
                                                  map_location='cpu')
    # EMAHook: the saved state_dict holds the averaged weights, the raw ones sit beside them.
    assert 'ema_state_dict' in checkpoint
    key = 'bbox_head.rtm_cls.0.weight'
    assert not torch.equal(checkpoint['state_dict'][key],
                           checkpoint['ema_state_dict'][f'module.{key}'])
