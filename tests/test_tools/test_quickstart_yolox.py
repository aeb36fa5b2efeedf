"""The YOLOX quickstart trains through tools/train.py on tiny generated data: Mosaic and
RandomAffine through MultiImageMixDataset, then YOLOXModeSwitchHook's last epoch without them
and with the L1 loss, EMA weights validated and saved."""
import pytest
import torch
from mmengine.runner import CheckpointLoader

from detlab.utils import register_all_modules
from helpers import NUM_VAL, assert_ok, run_tool

pytestmark = pytest.mark.slow


def test_yolox_quickstart_switches_mode_and_saves_ema_weights(tmp_path):
    data_root = tmp_path / 'shapes'
    ann_val = f'{data_root}/annotations/instances_val.json'
    options = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
               'custom_hooks.0.num_last_epochs=0', 'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=4', f'val_evaluator.ann_file={ann_val}',
               f'test_evaluator.ann_file={ann_val}',
               'train_dataloader.dataset.dataset.num_images=8',
               f'train_dataloader.dataset.dataset.data_root={data_root}/',
               f'val_dataloader.dataset.num_images={NUM_VAL}',
               f'test_dataloader.dataset.num_images={NUM_VAL}',
               f'val_dataloader.dataset.data_root={data_root}/',
               f'test_dataloader.dataset.data_root={data_root}/']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    output = assert_ok(run_tool('tools/train.py', 'configs/quickstart/yolox_tiny_shapes.py',
                                '--work-dir', tmp_path / 'work', '--cfg-options', *options))
    assert 'YOLOXModeSwitchHook: from epoch 2' in output
    # The switch comes before the second epoch (MMDetection's condition: epoch index e with
    # e + 1 >= max_epochs - num_last_epochs); only that epoch logs the L1 loss.
    first, second = output.split('YOLOXModeSwitchHook: from epoch 2')
    assert 'loss_obj: ' in first and 'loss_l1: ' not in first
    assert 'loss_l1: ' in second and 'bbox_mAP' in second
    register_all_modules()  # detlab's safe checkpoint loading
    checkpoint = CheckpointLoader.load_checkpoint(str(tmp_path / 'work' / 'epoch_2.pth'),
                                                  map_location='cpu')
    assert 'ema_state_dict' in checkpoint
    key = 'bbox_head.multi_level_conv_cls.0.weight'
    assert not torch.equal(checkpoint['state_dict'][key],
                           checkpoint['ema_state_dict'][f'module.{key}'])
