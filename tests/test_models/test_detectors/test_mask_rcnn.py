"""MaskRCNN: MMDetection's losses, boxes and pasted masks; its config and state_dict keys."""
import copy
import hashlib

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from detlab.models.roi_heads.mask_heads.paste_masks import (paste_chunk, paste_chunks,
                                                            paste_masks_in_image)
from detlab.registry import MODELS
from detlab.structures.mask import BitmapMasks, PolygonMasks, mask_target
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT
from tiny_mask_rcnn import coco128_batch, detlab_samples, tiny_config

# MMDetection 3.3 on the same model and inputs (tools/dev/measure_mask_rcnn.py): the
# state_dict of MODELS.build(tiny_config(share)) after torch.manual_seed(0) and
# init_weights(), loaded strictly into mmdet's MaskRCNN; coco128 images 9 and 49 with
# ellipse masks (polygons, then bitmaps); torch.manual_seed(1) before loss(), then
# predict(). detlab's boxes, scores and pasted masks were identical pixel for pixel.
MMDET = {
    False: dict(
        losses={'loss_rpn_cls': 0.6921601295471191, 'loss_rpn_bbox': 0.08051417022943497,
                'loss_cls': 1.4127453565597534, 'acc': 2.9296875,
                'loss_bbox': 0.2972646951675415, 'loss_mask': 1.2778900861740112},
        mask_pixels_per_image=[64166, 59353], top3_mask_pixels=[634, 110, 33]),
    True: dict(
        losses={'loss_rpn_cls': 0.6921601295471191, 'loss_rpn_bbox': 0.08051417022943497,
                'loss_cls': 1.4127453565597534, 'acc': 2.9296875,
                'loss_bbox': 0.2972646951675415, 'loss_mask': 1.2136356830596924},
        mask_pixels_per_image=[50032, 44251], top3_mask_pixels=[469, 96, 35]),
}
MMDET_NUM_DETS = [100, 100]
MMDET_TOP3_BOXES = [[37.74147033691406, 89.09981536865234, 105.32145690917969, 224.06002807617188],
                    [486.18414306640625, 445.89453125, 620.3300170898438, 479.9765930175781],
                    [449.4591064453125, 469.9106140136719, 584.6074829101562, 479.99285888671875]]
MMDET_TOP3_SCORES = [0.2905145287513733, 0.28997310996055603, 0.28887972235679626]
MMDET_TOP3_LABELS = [2, 2, 2]
# MMDetection's MaskRCNN built from its own config files: the number of state_dict keys
# and the sha256 of its sorted "key:shape" lines. On the same weights and a coco128 photo
# (1066x800 FPN, 480x360 C4) the losses, boxes and pasted masks were equal too.
MMDET_STATE_DICTS = {
    'mask-rcnn_r50_fpn_1x_coco.py': (
        360, '8d072f813d7b8cb95d58d3740f294c491286aa98ec01298de2339a5b8480e8fb'),
    'mask-rcnn_r50-caffe-c4_1x_coco.py': (
        332, '54d8f7c7af764706e502e49cb2a1da1fee791812054da3a2fc3c5cefd3bca4a7'),
}


def build(share_roi_extractor=False):
    torch.manual_seed(0)
    model = MODELS.build(tiny_config(share_roi_extractor))
    model.init_weights()
    return model


@pytest.mark.parametrize('share', [False, True], ids=['own_extractor', 'shared_extractor'])
def test_losses_boxes_and_masks_equal_mmdetections(coco128, share):
    inputs, annotations = coco128_batch(coco128)
    model = build(share)
    assert model.roi_head.share_roi_extractor is share
    model.train()
    torch.manual_seed(1)
    losses = model.loss(inputs, detlab_samples(annotations))
    expected = MMDET[share]
    assert set(losses) == set(expected['losses'])
    # The RPN's losses come per level, as MMDetection's; what is logged (and compared
    # here) is their sum, as mmengine's parse_losses makes it.
    _, log_vars = model.parse_losses(losses)
    for key, value in expected['losses'].items():
        assert log_vars[key].item() == pytest.approx(value, rel=1e-5, abs=1e-7), key
    model.eval()
    with torch.no_grad():
        results = [r.pred_instances for r in model.predict(inputs, detlab_samples(annotations))]
    assert [len(r) for r in results] == MMDET_NUM_DETS
    pred = results[0]
    assert torch.allclose(pred.bboxes[:3], torch.tensor(MMDET_TOP3_BOXES), atol=1e-3)
    assert torch.allclose(pred.scores[:3], torch.tensor(MMDET_TOP3_SCORES), atol=1e-6)
    assert pred.labels[:3].tolist() == MMDET_TOP3_LABELS
    # Masks in the original image, bool, as many pixels as MMDetection's to the pixel.
    assert pred.masks.shape == (100, 480, 640) and pred.masks.dtype == torch.bool
    assert results[1].masks.shape == (100, 500, 381)
    assert [int(r.masks.sum()) for r in results] == expected['mask_pixels_per_image']
    assert pred.masks[:3].flatten(1).sum(1).tolist() == expected['top3_mask_pixels']


def test_loss_backpropagates_into_the_mask_head_and_tensor_mode(coco128):
    inputs, annotations = coco128_batch(coco128)
    model = build()
    losses = model.loss(inputs, detlab_samples(annotations))
    losses['loss_mask'].sum().backward()
    assert model.roi_head.mask_head.conv_logits.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        (outputs, ) = model(inputs, detlab_samples(annotations), mode='tensor')
    cls_score, bbox_pred, mask_preds = outputs
    assert mask_preds.shape == (100, 3, 28, 28)  # the first 100 proposals, as MMDetection


def test_no_detections_give_empty_masks_of_the_original_image():
    model = build()
    model.eval()
    inputs = torch.zeros(1, 3, 64, 96)
    from tiny_faster_rcnn import inputs_and_samples
    _, samples = inputs_and_samples()
    samples = samples[:1]
    samples[0].proposals = InstanceData(bboxes=torch.zeros(0, 4))
    with torch.no_grad():
        pred = model.predict(inputs, samples)[0].pred_instances
    assert pred.masks.shape == (0, 32, 48) and pred.masks.dtype == torch.bool


def r50_state_dict(config):
    cfg = Config.fromfile(str(config))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    return model.state_dict()


@pytest.mark.parametrize('folder', ['configs', 'tests/data/mmdet_3.3_configs'],
                         ids=['detlab', 'mmdet'])
@pytest.mark.parametrize('name', sorted(MMDET_STATE_DICTS))
def test_r50_configs_have_mmdetections_state_dict_keys_and_shapes(folder, name):
    state = r50_state_dict(REPO_ROOT / folder / 'mask_rcnn' / name)
    text = '\n'.join(f'{k}:{tuple(v.shape)}' for k, v in sorted(state.items()))
    num_keys, signature = MMDET_STATE_DICTS[name]
    assert len(state) == num_keys
    assert hashlib.sha256(text.encode()).hexdigest() == signature
    assert state['roi_head.mask_head.conv_logits.weight'].shape == (80, 256, 1, 1)
    assert state['roi_head.mask_head.upsample.weight'].shape[1] == 256


def test_c4_shared_head_runs_on_box_and_mask_features_and_keeps_bn_frozen():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py'))
    adopt_default_scope(cfg)
    roi_head = MODELS.build(cfg.model.roi_head)
    assert roi_head.with_shared_head and roi_head.share_roi_extractor
    roi_head.train()
    assert not roi_head.shared_head.layer4[0].bn1.training  # norm_eval
    feats = (torch.randn(1, 1024, 8, 8), )
    rois = torch.tensor([[0., 0., 0., 64., 64.], [0., 16., 16., 100., 90.]])
    with torch.no_grad():
        bbox = roi_head._bbox_forward(feats, rois)
        mask = roi_head._mask_forward(feats, rois)
    assert bbox['bbox_feats'].shape == (2, 2048, 7, 7)  # 14x14 pooled, layer4 halves it
    assert mask['mask_preds'].shape == (2, 80, 14, 14)


# ---- mask targets ---------------------------------------------------------
def test_bitmap_and_polygon_targets_agree_and_rois_are_clipped():
    polygon = np.array([4., 4., 28., 4., 28., 20., 4., 20.])  # a 24 x 16 rectangle
    polygons = PolygonMasks([[polygon]], 32, 40)
    bitmaps = BitmapMasks(polygons.to_ndarray(), 32, 40)
    rois = torch.tensor([[4., 4., 28., 20.], [-10., -10., 16., 12.]])
    gt_inds = torch.tensor([0, 0])
    cfg = dict(mask_size=8)
    from_bitmaps = mask_target([rois], [gt_inds], [bitmaps], cfg)
    from_polygons = mask_target([rois], [gt_inds], [polygons], cfg)
    assert from_bitmaps.shape == (2, 8, 8) and from_bitmaps.dtype == torch.float32
    assert from_bitmaps[0].all()  # the RoI is the rectangle
    # The second RoI is clipped to (0, 0, 16, 12): the rectangle fills its lower right.
    assert from_bitmaps[1, 0, 0] == 0 and from_bitmaps[1, -1, -1] == 1
    assert torch.equal(from_bitmaps, from_polygons)
    soft = mask_target([rois], [gt_inds], [bitmaps], dict(mask_size=8, soft_mask_target=True))
    assert ((soft > 0) & (soft < 1)).any()


def test_mask_target_edge_cases():
    masks = BitmapMasks(np.ones((1, 8, 8), dtype=np.uint8), 8, 8)
    empty = mask_target([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], [masks],
                        dict(mask_size=28))
    assert empty.shape == (0, 28, 28)
    assert mask_target([], [], [], dict(mask_size=28)) == []
    with pytest.raises(KeyError, match='mask_size'):
        mask_target([torch.ones(1, 4)], [torch.zeros(1, dtype=torch.long)], [masks], {})


# ---- pasting ----------------------------------------------------------------
def test_paste_puts_each_mask_in_its_box_and_chunking_changes_nothing():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(5, 1, 28, 28, generator=generator)
    boxes = torch.tensor([[3.3, 4.1, 30.7, 22.2], [0., 0., 60., 40.], [50.5, 30.5, 59.5, 39.5],
                          [10., 10., 10., 20.], [-5., -5., 8., 6.]])
    cpu = paste_masks_in_image(probs, boxes, 40, 60, threshold=0.5)
    assert cpu.shape == (5, 40, 60) and cpu.dtype == torch.bool
    assert not cpu[0, :, 32:].any() and not cpu[0, 24:].any()  # nothing outside the box
    # A box without width samples its mask's centre column, within a pixel of the box.
    assert not cpu[3, :, :9].any() and not cpu[3, :, 11:].any()
    # The GPU path samples the whole image: the same values pixel for pixel, except for a
    # box without width, whose centre column it spreads over the image (as MMDetection).
    whole, region = paste_chunk(probs, boxes, 40, 60, skip_empty=False)
    assert region == ()
    proper = [0, 1, 2, 4]
    assert torch.equal(whole[proper] >= 0.5, cpu[proper])
    soft = paste_masks_in_image(probs, boxes, 40, 60, threshold=-1)
    assert soft.dtype == torch.uint8 and soft.max() > 1


def test_paste_chunks_bound_the_working_memory():
    # 100 masks of a 1333x800 image: 1.28 GB of grid and samples -> two chunks of 1 GiB.
    assert paste_chunks(100, 800, 1333) == 2
    assert paste_chunks(3, 100, 100) == 1
    assert paste_chunks(10, 100, 100, memory_limit=100 * 100 * 12 * 2) == 5
    with pytest.raises(ValueError, match='memory_limit'):
        paste_chunks(1, 100, 100, memory_limit=10)


# ---- configuration errors ---------------------------------------------------
def test_configuration_errors_name_the_key():
    cfg = tiny_config()
    with pytest.raises(ValueError, match='dcn'):
        MODELS.build(dict(type='ResLayer', depth=50, dcn=dict(type='DCN')))
    no_head = copy.deepcopy(cfg['roi_head'])
    no_head.pop('mask_head')
    with pytest.raises(ValueError, match='mask_roi_extractor'):
        MODELS.build(no_head)
    with pytest.raises(ValueError, match='init_cfg'):
        MODELS.build(dict(type='FCNMaskHead', init_cfg=dict(type='Normal')))
    with pytest.raises(ValueError, match='carafe'):
        MODELS.build(dict(type='FCNMaskHead', upsample_cfg=dict(type='carafe', scale_factor=2)))
    no_threshold = tiny_config()
    del no_threshold['test_cfg']['rcnn']['mask_thr_binary']
    model = MODELS.build(no_threshold).eval()
    from tiny_faster_rcnn import inputs_and_samples
    inputs, samples = inputs_and_samples()
    with pytest.raises(KeyError, match='mask_thr_binary'), torch.no_grad():
        model.predict(inputs, samples)


# ---- configs ----------------------------------------------------------------
MASK_RCNN_CONFIGS = sorted(p.relative_to(REPO_ROOT).as_posix()
                           for p in (REPO_ROOT / 'configs/mask_rcnn').glob('*.py'))


def dataset_pipeline(dataset: dict) -> list:
    while 'pipeline' not in dataset:  # through dataset wrappers (RepeatDataset, ...)
        dataset = dataset['dataset']
    return dataset['pipeline']


@pytest.mark.parametrize('config', MASK_RCNN_CONFIGS)
def test_every_mask_rcnn_config_builds_its_model_and_pipelines(config):
    from detlab.registry import TRANSFORMS
    cfg = Config.fromfile(str(REPO_ROOT / config))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'MaskRCNN' and model.roi_head.with_mask
    assert model.data_preprocessor.pad_mask
    for pipeline in (dataset_pipeline(cfg.train_dataloader.dataset),
                     dataset_pipeline(cfg.test_dataloader.dataset)):
        for transform in pipeline:
            TRANSFORMS.build(transform)
    assert 'segm' in cfg.val_evaluator['metric']


def test_base_config_merges_to_mmdetections():
    detlab = Config.fromfile(str(REPO_ROOT / 'configs/_base_/models/mask-rcnn_r50_fpn.py'))
    mmdet = Config.fromfile(
        str(REPO_ROOT / 'tests/data/mmdet_3.3_configs/_base_/models/mask-rcnn_r50_fpn.py'))
    assert detlab.model.to_dict() == mmdet.model.to_dict()


@pytest.mark.slow
def test_print_config_prints_the_mask_rcnn_base_config():
    from helpers import assert_ok, run_tool
    text = assert_ok(run_tool('tools/misc/print_config.py',
                              'configs/_base_/models/mask-rcnn_r50_fpn.py'))
    for merged in ("type='MaskRCNN'", "type='FCNMaskHead'", 'mask_size=28',
                   'mask_thr_binary=0.5', 'pad_mask=True'):
        assert merged in text, merged
