"""RetinaNet: forward modes and MMDetection 3.3 state_dict compatibility."""
import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData

from detlab.models.utils import levels_to_anchor_rows
from detlab.registry import MODELS
from detlab.structures import DetDataSample

from helpers import REPO_ROOT


def mmdet_retinanet_r50_keys() -> dict:
    """MMDetection 3.3's RetinaNet R50-FPN (80 classes) state_dict: name -> shape.

    Backbone keys are torchvision's ResNet-50 keys (mmdet's ResNet uses the same
    names); the neck and head follow mmdet's FPN/RetinaHead ConvModule layout.
    """
    expected = {f'backbone.{k}': tuple(v.shape)
                for k, v in torchvision.models.resnet50().state_dict().items()
                if not k.startswith('fc.')}
    for i, channels in enumerate([512, 1024, 2048]):
        expected[f'neck.lateral_convs.{i}.conv.weight'] = (256, channels, 1, 1)
        expected[f'neck.lateral_convs.{i}.conv.bias'] = (256,)
    for i in range(5):
        expected[f'neck.fpn_convs.{i}.conv.weight'] = (256, 2048 if i == 3 else 256, 3, 3)
        expected[f'neck.fpn_convs.{i}.conv.bias'] = (256,)
    for tower in ('cls_convs', 'reg_convs'):
        for i in range(4):
            expected[f'bbox_head.{tower}.{i}.conv.weight'] = (256, 256, 3, 3)
            expected[f'bbox_head.{tower}.{i}.conv.bias'] = (256,)
    expected['bbox_head.retina_cls.weight'] = (9 * 80, 256, 3, 3)
    expected['bbox_head.retina_cls.bias'] = (9 * 80,)
    expected['bbox_head.retina_reg.weight'] = (9 * 4, 256, 3, 3)
    expected['bbox_head.retina_reg.bias'] = (9 * 4,)
    return expected


def build_from(config_path):
    cfg = Config.fromfile(str(config_path))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def r50_retinanet():
    return build_from(REPO_ROOT / 'configs/retinanet/retinanet_r50_fpn_1x_coco.py')


def test_state_dict_matches_mmdetection(r50_retinanet):
    actual = {k: tuple(v.shape) for k, v in r50_retinanet.state_dict().items()}
    assert actual == mmdet_retinanet_r50_keys()


def test_mmdetection_checkpoint_loads_strictly(r50_retinanet, tmp_path):
    torch.manual_seed(0)
    state_dict = {k: torch.randn(shape) if shape else torch.tensor(7)
                  for k, shape in mmdet_retinanet_r50_keys().items()}
    path = tmp_path / 'retinanet_r50_fpn_1x_coco_mmdet.pth'
    torch.save(dict(meta=dict(mmdet_version='3.3.0', epoch=12), state_dict=state_dict), path)
    load_checkpoint(r50_retinanet, str(path), map_location='cpu', strict=True)
    loaded = r50_retinanet.state_dict()['bbox_head.retina_cls.weight']
    assert torch.equal(loaded, state_dict['bbox_head.retina_cls.weight'])


def small_retinanet():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/quickstart/retinanet_r18_fpn_shapes.py'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(num_images=2, size=64):
    torch.manual_seed(0)
    samples = []
    for i in range(num_images):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.]]),
                                           labels=torch.tensor([i % 3]))
        samples.append(sample)
    inputs = [torch.randint(0, 255, (3, size, size), dtype=torch.uint8) for _ in range(num_images)]
    return dict(inputs=inputs, data_samples=samples)


def test_forward_modes():
    model = small_retinanet()
    data = model.data_preprocessor(batch(), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(level) and level.requires_grad
               for levels in losses.values() for level in levels)

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(batch(), training=False)
        cls_scores, bbox_preds = model(**data, mode='tensor')
        results = model(**data, mode='predict')
    assert len(cls_scores) == 3 and cls_scores[0].shape[1] == 9 * 3
    assert len(results) == 2 and isinstance(results[0], DetDataSample)
    preds = results[0].pred_instances
    assert preds.bboxes.shape[1] == 4 and len(preds.bboxes) == len(preds.scores)
    with pytest.raises(RuntimeError, match='Invalid forward mode'):
        model(**data, mode='bogus')


def test_logged_losses_sum_the_levels_and_equal_the_loss_over_every_anchor():
    """The head returns one loss per level (MMDetection's structure); what
    mmengine logs and optimises is their sum, the loss over all anchors at once."""
    model = small_retinanet()
    data = model.data_preprocessor(batch(), training=True)
    losses = model(**data, mode='loss')
    assert [len(losses['loss_cls']), len(losses['loss_bbox'])] == [3, 3]
    total, log_vars = model.parse_losses(losses)
    assert list(log_vars) == ['loss', 'loss_cls', 'loss_bbox']

    head, samples = model.bbox_head, data['data_samples']
    with torch.no_grad():
        cls_scores, bbox_preds = head(model.extract_feat(data['inputs']))
    sizes = [score.shape[-2:] for score in cls_scores]
    anchors = torch.cat(head.prior_generator.grid_priors(sizes))
    targets = head.get_targets(anchors, sizes, [s.gt_instances for s in samples],
                               [s.metainfo for s in samples])
    channels = head.cls_out_channels
    loss_cls = head.loss_cls(levels_to_anchor_rows(cls_scores, channels).reshape(-1, channels),
                             targets.labels.reshape(-1), targets.label_weights.reshape(-1),
                             avg_factor=targets.avg_factor)
    loss_bbox = head.loss_bbox(levels_to_anchor_rows(bbox_preds, 4).reshape(-1, 4),
                               targets.bbox_targets.reshape(-1, 4),
                               targets.bbox_weights.reshape(-1, 4), avg_factor=targets.avg_factor)
    assert loss_bbox.item() > 0
    assert log_vars['loss_cls'].item() == pytest.approx(loss_cls.item(), rel=1e-5)
    assert log_vars['loss_bbox'].item() == pytest.approx(loss_bbox.item(), rel=1e-5)
    assert total.item() == pytest.approx(loss_cls.item() + loss_bbox.item(), rel=1e-5)
