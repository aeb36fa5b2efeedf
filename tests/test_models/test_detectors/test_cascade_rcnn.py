"""CascadeRCNN and CascadeRoIHead: MMDetection's losses, boxes and pasted masks; the
cascade's refinement, its configs and state_dict keys."""
import copy
import hashlib

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from detlab.models.roi_heads.bbox_heads import RoITargets
from detlab.models.task_modules.samplers import SamplingResult
from detlab.registry import MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT
from tiny_cascade_rcnn import tiny_config
from tiny_mask_rcnn import coco128_batch, detlab_samples

# MMDetection 3.3 on the same model and inputs (tools/dev/measure_cascade_rcnn.py): the
# state_dict of MODELS.build(tiny_config(with_mask)) after torch.manual_seed(0) and
# init_weights(), loaded strictly into mmdet's CascadeRCNN; coco128 images 9 and 49 (ellipse
# masks: polygons, then bitmaps); torch.manual_seed(1) before loss(), then predict().
# detlab's losses, boxes and scores were bit-identical, its pasted masks identical pixel
# for pixel.
MMDET = {
    False: dict(
        losses={'loss_rpn_cls': 0.6934946179389954, 'loss_rpn_bbox': 0.08160978555679321,
                's0.loss_cls': 1.320178747177124, 's0.acc': 85.83984375,
                's0.loss_bbox': 0.12278752028942108, 's1.loss_cls': 0.69704669713974,
                's1.acc': 11.71875, 's1.loss_bbox': 0.04543200135231018,
                's2.loss_cls': 0.3424842059612274, 's2.acc': 34.375,
                's2.loss_bbox': 0.007548310793936253},
        top3_boxes=[[384.88323974609375, 204.49557495117188, 480.8719177246094, 300.118896484375],
                    [338.82867431640625, 96.47819519042969, 434.7950744628906, 192.5792999267578],
                    [509.392333984375, 0.11861801147460938, 640.0, 159.7218475341797]],
        top3_scores=[0.257267028093338, 0.2568126320838928, 0.2564941644668579],
        top3_labels=[0, 1, 1], box_sums=[123356.3515625, 86275.1171875]),
    True: dict(
        losses={'loss_rpn_cls': 0.6922693252563477, 'loss_rpn_bbox': 0.08122790604829788,
                's0.loss_cls': 1.3587136268615723, 's0.acc': 55.95703125,
                's0.loss_bbox': 0.13878153264522552, 's0.loss_mask': 1.3656786680221558,
                's1.loss_cls': 0.6457239389419556, 's1.acc': 85.05859375,
                's1.loss_bbox': 0.07095620036125183, 's1.loss_mask': 0.43393662571907043,
                's2.loss_cls': 0.35198378562927246, 's2.acc': 4.6875,
                's2.loss_bbox': 0.014315309002995491, 's2.loss_mask': 0.30917853116989136},
        top3_boxes=[[0.5952332019805908, 144.6709442138672, 168.35182189941406, 336.3787841796875],
                    [0.18389062583446503, 79.82533264160156, 68.35902404785156, 350.2482604980469],
                    [534.1758422851562, 86.48535919189453, 639.9983520507812, 153.8616943359375]],
        top3_scores=[0.2694133520126343, 0.2690076231956482, 0.267763614654541],
        top3_labels=[2, 2, 2], box_sums=[113628.3984375, 77843.375],
        mask_pixels_per_image=[1474765, 1050650], top3_mask_pixels=[16632, 11186, 4797]),
}
MMDET_NUM_DETS = [100, 100]
# MMDetection's CascadeRCNN built from its own config files: the number of state_dict keys
# and the sha256 of its sorted "key:shape" lines (as tools/dev/measure_mask_rcnn.py
# writes them). On the same weights and coco128 photo 9 at 1066x800 (score_thr 0.001) the
# losses of both were equal to the last bit (s0-s2 loss_cls, acc, loss_bbox, loss_mask),
# the 100 boxes, scores and labels identical, the 100 pasted 640x480 masks identical pixel
# for pixel.
MMDET_STATE_DICTS = {
    'cascade-rcnn_r50_fpn_1x_coco.py': (
        364, '721228bbf1e2d4782eac7961127ac97431a827806a0cedc7074abd0cc1db5394'),
    'cascade-mask-rcnn_r50_fpn_1x_coco.py': (
        400, 'edddfa52f29259cb89275f60375c700963f174df31739d8d5ea0417ce0f606b2'),
}


def build(with_mask=False, **roi_head):
    cfg = tiny_config(with_mask)
    cfg['roi_head'].update(roi_head)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def train_losses(model, inputs, annotations):
    model.train()
    torch.manual_seed(1)
    _, log_vars = model.parse_losses(model.loss(inputs, detlab_samples(annotations)))
    return log_vars


@pytest.mark.parametrize('with_mask', [False, True], ids=['boxes', 'masks'])
def test_losses_boxes_and_masks_equal_mmdetections(coco128, with_mask):
    inputs, annotations = coco128_batch(coco128)
    model = build(with_mask)
    log_vars = train_losses(model, inputs, annotations)
    expected = MMDET[with_mask]
    assert set(log_vars) == set(expected['losses']) | {'loss'}  # 'loss': their total
    assert {key: log_vars[key].item() for key in expected['losses']} == pytest.approx(
        expected['losses'], rel=1e-5, abs=1e-7)
    model.eval()
    with torch.no_grad():
        results = [r.pred_instances for r in model.predict(inputs, detlab_samples(annotations))]
    first = results[0]
    assert [len(r) for r in results] == MMDET_NUM_DETS
    assert first.labels[:3].tolist() == expected['top3_labels']
    assert first.bboxes[:3].tolist() == [pytest.approx(box, abs=1e-3)
                                         for box in expected['top3_boxes']]
    assert first.scores[:3].tolist() == pytest.approx(expected['top3_scores'], abs=1e-6)
    assert [float(r.bboxes.sum()) for r in results] == pytest.approx(expected['box_sums'],
                                                                     rel=1e-6)
    if not with_mask:
        assert 'masks' not in first
        return
    assert first.masks.shape == (100, 480, 640) and first.masks.dtype == torch.bool
    assert [int(r.masks.sum()) for r in results] == expected['mask_pixels_per_image']
    assert first.masks[:3].flatten(1).sum(1).tolist() == expected['top3_mask_pixels']


def test_stage_loss_weights_scale_each_stages_losses_only(coco128):
    inputs, annotations = coco128_batch(coco128)
    log_vars = train_losses(build(stage_loss_weights=[1, 1, 1]), inputs, annotations)
    expected = MMDET[False]['losses']
    for stage, weight in ((1, 0.5), (2, 0.25)):
        for name in ('loss_cls', 'loss_bbox'):
            key = f's{stage}.{name}'
            assert log_vars[key].item() == pytest.approx(expected[key] / weight, rel=1e-5)
        assert log_vars[f's{stage}.acc'].item() == pytest.approx(expected[f's{stage}.acc'])


def test_every_stage_trains_and_tensor_mode_gives_averaged_outputs(coco128):
    inputs, annotations = coco128_batch(coco128)
    model = build(with_mask=True)
    model.train()
    losses = model.loss(inputs, detlab_samples(annotations))
    model.parse_losses(losses)[0].backward()
    roi_head = model.roi_head
    for stage in range(3):
        assert roi_head.bbox_head[stage].fc_cls.weight.grad.abs().sum() > 0, stage
        assert roi_head.mask_head[stage].conv_logits.weight.grad.abs().sum() > 0, stage
    model.eval()
    with torch.no_grad():
        (outputs, ) = model(inputs, detlab_samples(annotations), mode='tensor')
    cls_scores, bbox_preds, mask_probs = outputs
    num_proposals = [len(s) for s in cls_scores]  # the RPN's, after its NMS
    assert min(num_proposals) > 100
    assert [s.shape for s in cls_scores] == [(n, 4) for n in num_proposals]
    assert [p.shape for p in bbox_preds] == [(n, 4) for n in num_proposals]  # class-agnostic
    assert [m.shape for m in mask_probs] == [(n, 3, 28, 28) for n in num_proposals]
    assert 0 <= float(mask_probs[0].min()) and float(mask_probs[0].max()) <= 1


def test_state_dict_keys_are_mmdetections_per_stage():
    model = build(with_mask=True)
    keys = model.state_dict()
    for stage in range(3):
        assert f'roi_head.bbox_head.{stage}.fc_reg.weight' in keys
        assert keys[f'roi_head.bbox_head.{stage}.fc_reg.weight'].shape[0] == 4
        assert f'roi_head.mask_head.{stage}.conv_logits.weight' in keys
    assert not any(k.startswith('roi_head.bbox_roi_extractor') for k in keys)  # no params
    shared = build(with_mask=True, mask_roi_extractor=None).roi_head
    assert shared.share_roi_extractor and shared.mask_roi_extractor is shared.bbox_roi_extractor


# ---- refinement -------------------------------------------------------------
def sampling_result(priors, gt_bboxes, assigned_gt_inds, gt_flags):
    """A SamplingResult whose positives are the priors with assigned_gt_inds > 0."""
    from detlab.models.task_modules.assigners import AssignResult
    assigned = torch.tensor(assigned_gt_inds)
    labels = torch.where(assigned > 0, torch.zeros_like(assigned), torch.full_like(assigned, -1))
    assign_result = AssignResult(len(gt_bboxes), assigned, torch.ones(len(assigned)), labels)
    return SamplingResult(pos_inds=(assigned > 0).nonzero().flatten(),
                          neg_inds=(assigned == 0).nonzero().flatten(), priors=priors,
                          gt_bboxes=gt_bboxes, assign_result=assign_result,
                          gt_flags=torch.tensor(gt_flags, dtype=torch.uint8))


def test_refine_bboxes_regresses_by_class_and_drops_the_added_gts():
    head = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8,
                             roi_feat_size=1, num_classes=2, reg_class_agnostic=False))
    gt = torch.tensor([[10., 10., 30., 30.]])
    # Image 0: prior 0 is the gt added by the sampler, prior 1 a positive, prior 2 a negative.
    priors = torch.tensor([[10., 10., 30., 30.], [12., 12., 30., 30.], [40., 40., 60., 60.]])
    res = sampling_result(priors, gt, [1, 1, 0], [1, 0, 0])
    rois = torch.cat([torch.zeros(3, 1), priors], dim=1)
    # Class 1's deltas shift x by one box width; class 0's do nothing.
    bbox_pred = torch.zeros(3, 8)
    bbox_pred[:, 4] = 10.  # dx of class 1, divided by target_std 0.1 -> 1 box width
    cls_score = torch.tensor([[0., 0., 0.], [0., 0., 0.], [0., 5., 0.]])  # negative -> class 1
    targets = RoITargets(labels=torch.tensor([0, 0, 2]), label_weights=torch.ones(3),
                         bbox_targets=torch.zeros(3, 4), bbox_weights=torch.zeros(3, 4))
    (refined, ) = head.refine_bboxes(
        [res], dict(rois=rois, cls_score=cls_score, bbox_pred=bbox_pred, bbox_targets=targets),
        [dict(img_shape=(100, 100))])
    assert torch.allclose(refined.bboxes, torch.tensor([[12., 12., 30., 30.],
                                                        [60., 40., 80., 60.]]))
    empty = dict(rois=rois[:0], cls_score=cls_score[:0], bbox_pred=bbox_pred[:0],
                 bbox_targets=targets)
    assert head.refine_bboxes([res], empty, [dict(img_shape=(100, 100))]) is None


def test_regress_by_class_clips_to_the_image_and_checks_its_input():
    head = MODELS.build(dict(type='BBoxHead', in_channels=4, roi_feat_size=1, num_classes=3,
                             reg_class_agnostic=True))
    boxes = head.regress_by_class(torch.tensor([[80., 80., 120., 110.]]), torch.tensor([0]),
                                  torch.zeros(1, 4), dict(img_shape=(100, 90)))
    assert boxes.tolist() == [[80., 80., 90., 100.]]
    with pytest.raises(ValueError, match=r'\(n, 4\)'):
        head.regress_by_class(torch.zeros(1, 4), torch.tensor([0]), torch.zeros(1, 12),
                              dict(img_shape=(100, 90)))


def test_no_proposals_give_empty_boxes_and_masks():
    from tiny_faster_rcnn import inputs_and_samples
    model = build(with_mask=True).eval()
    inputs, samples = inputs_and_samples()
    for sample in samples:
        sample.proposals = InstanceData(bboxes=torch.zeros(0, 4))
    with torch.no_grad():
        preds = [s.pred_instances for s in model.predict(inputs, samples)]
    assert [len(p) for p in preds] == [0, 0]
    assert preds[0].masks.shape == (0, 32, 48)


def test_configuration_errors_name_the_key():
    cfg = tiny_config()
    with pytest.raises(ValueError, match='bbox_head has 2 entries'):
        MODELS.build(dict(cfg['roi_head'], bbox_head=cfg['roi_head']['bbox_head'][:2]))
    with pytest.raises(ValueError, match='stage_loss_weights'):
        MODELS.build(dict(cfg['roi_head'], stage_loss_weights=[1, 0.5]))
    with pytest.raises(ValueError, match='shared_head'):
        MODELS.build(dict(cfg['roi_head'], shared_head=dict(type='ResLayer', depth=50)))
    with pytest.raises(ValueError, match='list of 3 dicts'):
        MODELS.build(dict(cfg['roi_head'], train_cfg=cfg['train_cfg']['rcnn'][0]))
    single = copy.deepcopy(cfg['roi_head'])
    single['bbox_head'] = single['bbox_head'][0]  # one dict serves every stage
    assert len(MODELS.build(single).bbox_head) == 3


# ---- configs ----------------------------------------------------------------
CASCADE_CONFIGS = sorted(p.relative_to(REPO_ROOT).as_posix()
                         for p in (REPO_ROOT / 'configs/cascade_rcnn').glob('*.py'))


def load(config):
    cfg = Config.fromfile(str(REPO_ROOT / config))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # torchvision:// would need the file
    return cfg


def dataset_pipelines(cfg) -> list:
    pipelines = []
    for dataloader in (cfg.train_dataloader, cfg.test_dataloader):
        dataset = dataloader.dataset
        while 'pipeline' not in dataset:  # through dataset wrappers (RepeatDataset, ...)
            dataset = dataset['dataset']
        pipelines.append(dataset['pipeline'])
    return pipelines


def test_the_r50_configs_name_mmdetections_checkpoints():
    from detlab.apis import model_zoo_weights
    # From MMDetection 3.3's configs/cascade_rcnn/metafile.yml.
    assert model_zoo_weights('cascade-rcnn_r50_fpn_1x_coco').endswith(
        'cascade_rcnn_r50_fpn_1x_coco_20200316-3dc56deb.pth')
    assert model_zoo_weights('cascade-mask-rcnn_r50_fpn_1x_coco').endswith(
        'cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth')


def test_all_of_mmdetections_cascade_configs_are_here():
    names = sorted(p.rsplit('/', 1)[1] for p in CASCADE_CONFIGS)
    assert len(names) == 30
    for name in ('cascade-rcnn_r18_fpn_8xb8-amp-lsj-200e_coco.py',
                 'cascade-mask-rcnn_x101-32x8d_fpn_ms-3x_coco.py',
                 'cascade-rcnn_x101_64x4d_fpn_20e_coco.py'):
        assert name in names


@pytest.mark.parametrize('config', CASCADE_CONFIGS)
def test_every_cascade_config_builds_its_model_and_pipelines(config):
    cfg = load(config)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'CascadeRCNN' and model.roi_head.num_stages == 3
    assert model.roi_head.with_mask == ('mask-rcnn' in config)
    assert model.data_preprocessor.pad_mask == model.roi_head.with_mask
    for pipeline in dataset_pipelines(cfg):
        for transform in pipeline:
            TRANSFORMS.build(transform)
    assert cfg.val_evaluator['type'] == 'CocoMetric'
    if 'ms-3x' not in config:  # MMDetection's common/ms_3x_coco-instance.py scores boxes only
        assert ('segm' in cfg.val_evaluator['metric']) == model.roi_head.with_mask


@pytest.mark.parametrize('folder', ['configs', 'tests/data/mmdet_3.3_configs'],
                         ids=['detlab', 'mmdet'])
@pytest.mark.parametrize('name', sorted(MMDET_STATE_DICTS))
def test_r50_configs_have_mmdetections_state_dict_keys_and_shapes(folder, name):
    state = MODELS.build(load(f'{folder}/cascade_rcnn/{name}').model).state_dict()
    text = '\n'.join(f'{k}:{tuple(v.shape)}' for k, v in sorted(state.items()))
    num_keys, signature = MMDET_STATE_DICTS[name]
    assert len(state) == num_keys
    assert hashlib.sha256(text.encode()).hexdigest() == signature
    assert state['roi_head.bbox_head.2.fc_reg.weight'].shape == (4, 1024)


@pytest.mark.parametrize('name', ['_base_/models/cascade-rcnn_r50_fpn.py',
                                  '_base_/models/cascade-mask-rcnn_r50_fpn.py',
                                  '_base_/schedules/schedule_20e.py',
                                  'cascade_rcnn/cascade-mask-rcnn_r50_fpn_20e_coco.py'])
def test_configs_merge_to_mmdetections(name):
    detlab = Config.fromfile(str(REPO_ROOT / 'configs' / name))
    mmdet = Config.fromfile(str(REPO_ROOT / 'tests/data/mmdet_3.3_configs' / name))
    assert detlab.get('model') == mmdet.get('model')
    assert detlab.get('param_scheduler') == mmdet.get('param_scheduler')
    assert detlab.get('train_cfg') == mmdet.get('train_cfg')


@pytest.mark.slow
def test_print_config_prints_the_cascade_mask_rcnn_base_config():
    from helpers import assert_ok, run_tool
    text = assert_ok(run_tool('tools/misc/print_config.py',
                              'configs/_base_/models/cascade-mask-rcnn_r50_fpn.py'))
    for merged in ("type='CascadeRCNN'", "type='CascadeRoIHead'", 'num_stages=3',
                   'pos_iou_thr=0.7', '0.067,',
                   'mask_thr_binary=0.5'):
        assert merged in text, merged
