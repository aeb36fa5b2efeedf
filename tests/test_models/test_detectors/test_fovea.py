"""FOVEA: MMDetection's gn-head-align config, shrunk, trains and predicts as a detector,
and its multi-scale training pipeline builds in detlab."""
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from helpers import REPO_ROOT
from detlab.registry import MODELS, TRANSFORMS
from detlab.structures import DetDataSample
from detlab.utils import adopt_default_scope

CONFIG = REPO_ROOT / 'configs/foveabox/fovea_r50_fpn_gn-head-align_ms-640-800-4xb4-2x_coco.py'


def small_cfg():
    """The config's model on a ResNet-18 with 32-channel FPN and head, no pretrained weights."""
    cfg = Config.fromfile(str(CONFIG))
    adopt_default_scope(cfg)
    model = cfg.model
    model.backbone.update(depth=18, init_cfg=None)
    model.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    model.bbox_head.update(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=2)
    return cfg


def batch(model, training):
    """One 192x256 image (the top level, stride 128, is 2x2) with one box."""
    sample = DetDataSample(metainfo=dict(img_shape=(192, 256), pad_shape=(192, 256),
                                         scale_factor=(1.0, 1.0), ori_shape=(192, 256)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[20., 16., 140., 120.]]),
                                       labels=torch.tensor([1]))
    image = torch.randint(0, 255, (3, 192, 256), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    return model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), training)


def test_gn_head_align_detector_trains_and_predicts():
    torch.manual_seed(0)
    model = MODELS.build(small_cfg().model)
    assert type(model).__name__ == 'FOVEA' and model.bbox_head.with_deform
    losses = model(**batch(model, True), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(value) for value in losses.values())
    assert losses['loss_bbox'].item() > 0  # the box (sqrt area 112) has fovea cells
    sum(losses.values()).backward()
    assert model.bbox_head.feature_adaption.conv_offset.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        (result,) = model(**batch(model, False), mode='predict')
    boxes = result.pred_instances.bboxes
    assert 0 < len(boxes) <= 100 and boxes.shape[1:] == (4,)
    assert (boxes >= 0).all() and (boxes[:, 2] <= 255).all() and (boxes[:, 3] <= 191).all()


def test_multiscale_train_pipeline_builds():
    cfg = Config.fromfile(str(CONFIG))
    adopt_default_scope(cfg)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [type(TRANSFORMS.build(step)).__name__ for step in pipeline] == \
        [step['type'] for step in pipeline]
