"""Faster R-CNN with MMDetection's deformable RoI pooling layers (the roi_layer of
dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py and dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py):
MMDetection's losses with non-zero offsets, and gradients to every offset layer."""
import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT
from detlab.registry import MODELS
from tiny_faster_rcnn import inputs_and_samples, tiny_config

# MMDetection 3.3 on the same model and inputs, measured by tools/dev/measure_dpool.py:
# detlab's state_dict (torch.manual_seed(0), init_weights(), seeded_offset_layers) loaded
# strictly into mmdet's model, whose mmcv Pack modules run detlab's deform_roi_pool as their
# kernel (mmcv-lite has none); torch.manual_seed(1) before loss().
MMDET_LOSSES = {
    'DeformRoIPoolPack': {
        'loss': 2.6182217597961426, 'loss_rpn_cls': 0.6911784410476685,
        'loss_rpn_bbox': 0.007257901132106781, 'loss_cls': 1.4285916090011597, 'acc': 1.5625,
        'loss_bbox': 0.49119365215301514},
    'ModulatedDeformRoIPoolPack': {
        'loss': 2.5752596855163574, 'loss_rpn_cls': 0.6914762258529663,
        'loss_rpn_bbox': 0.007326783612370491, 'loss_cls': 1.4134867191314697,
        'acc': 2.34375, 'loss_bbox': 0.46296992897987366},
}
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


def seeded_offset_layers(model) -> None:
    """Seeded values (generator seed 2) for the zero-initialised last fc layers of every
    RoI layer, so that the offsets and masks differ from their start."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in model.roi_head.bbox_roi_extractor.roi_layers:
            for fc in (layer.offset_fc[-1], getattr(layer, 'mask_fc', [None] * 3)[2]):
                if fc is not None:
                    fc.weight.copy_(torch.randn(fc.weight.shape, generator=generator) * 0.05)
                    fc.bias.copy_(torch.randn(fc.bias.shape, generator=generator) * 0.5)


@pytest.mark.parametrize('layer_type', sorted(CONFIGS))
def test_losses_equal_mmdetections_and_reach_the_offset_layers(layer_type):
    torch.manual_seed(0)
    model = MODELS.build(tiny_dpool_config(CONFIGS[layer_type]))
    model.init_weights()
    layers = model.roi_head.bbox_roi_extractor.roi_layers
    assert [type(layer).__name__ for layer in layers] == [layer_type] * 4
    assert [layer.spatial_scale for layer in layers] == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    # init_weights keeps mmcv's zero start: the first offsets are 0.
    assert all(layer.offset_fc[-1].weight.abs().max() == 0 for layer in layers)
    seeded_offset_layers(model)
    inputs, samples = inputs_and_samples()
    model.train()
    torch.manual_seed(1)
    total, log_vars = model.parse_losses(model.loss(inputs, samples))
    assert set(log_vars) == set(MMDET_LOSSES[layer_type])
    for key, value in MMDET_LOSSES[layer_type].items():
        assert log_vars[key].item() == pytest.approx(value, rel=1e-5, abs=1e-7), key
    total.backward()
    # The levels that pooled RoIs train every fc layer; the others get no gradient.
    used = [layer for layer in layers if layer.offset_fc[0].weight.grad is not None]
    assert used
    for layer in used:
        assert layer.offset_fc[0].weight.grad.abs().max() > 0
        assert layer.offset_fc[-1].weight.grad.abs().max() > 0
        if layer_type == 'ModulatedDeformRoIPoolPack':
            assert layer.mask_fc[2].weight.grad.abs().max() > 0
