"""Faster R-CNN with MMDetection's deformable RoI pooling layers (the roi_layer of
dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py and dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py)
trains: one step moves the offsets (and the mask) away from their zero start."""
import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT
from detlab.registry import MODELS
from tiny_faster_rcnn import inputs_and_samples, tiny_config

CONFIGS = {'DeformRoIPoolPack': 'dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py',
           'ModulatedDeformRoIPoolPack': 'dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py'}


def tiny_dpool_config(path: str) -> dict:
    """The tiny Faster R-CNN with the config's roi_layer, narrowed to its 16 channels,
    sampling 64 RoIs per image to keep the step cheap."""
    mmdet_cfg = Config.fromfile(str(REPO_ROOT / 'tests/data/mmdet_3.3_configs' / path))
    roi_layer = mmdet_cfg.model.roi_head.bbox_roi_extractor.roi_layer.to_dict()
    assert roi_layer.pop('output_channels') == 256 and roi_layer['output_size'] == 7
    cfg = tiny_config()
    cfg['roi_head']['bbox_roi_extractor']['roi_layer'] = dict(
        roi_layer, output_channels=16, deform_fc_channels=32)
    cfg['train_cfg']['rcnn']['sampler']['num'] = 64
    return cfg


@pytest.mark.parametrize('layer_type', sorted(CONFIGS))
def test_a_train_step_moves_the_offsets(layer_type):
    torch.manual_seed(0)
    model = MODELS.build(tiny_dpool_config(CONFIGS[layer_type]))
    model.init_weights()
    layers = model.roi_head.bbox_roi_extractor.roi_layers
    assert [type(layer).__name__ for layer in layers] == [layer_type] * 4
    assert [layer.spatial_scale for layer in layers] == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    # init_weights keeps mmcv's zero start: the first offsets are 0.
    assert all(layer.offset_fc[-1].weight.abs().max() == 0 for layer in layers)
    inputs, samples = inputs_and_samples()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    total, log_vars = model.parse_losses(model.loss(inputs, samples))
    assert set(log_vars) == {'loss', 'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'acc',
                             'loss_bbox'}
    assert torch.isfinite(total)
    total.backward()
    # Levels no RoI mapped to get no gradient (None).
    moved = [layer.offset_fc[-1].weight.grad.abs().sum().item()
             if layer.offset_fc[-1].weight.grad is not None else 0. for layer in layers]
    assert max(moved) > 0
    if layer_type == 'ModulatedDeformRoIPoolPack':
        level = moved.index(max(moved))
        assert layers[level].mask_fc[2].weight.grad.abs().max() > 0
    optimizer.step()
    level = moved.index(max(moved))
    feats = torch.randn(1, 16, 12, 12)
    rois = torch.tensor([[0., 4., 4., 30., 36.]]) * torch.tensor([1., *[4 * 2 ** level] * 4]) / 4
    with torch.no_grad():
        plain, deformed = layers[level].pool_twice(feats, rois)
    assert not torch.allclose(plain, deformed)
