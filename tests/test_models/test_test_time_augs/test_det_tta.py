"""DetTTAModel: MMDetection's merged detections for the same detector and views; the
TTA config that tools/test.py --tta builds."""
import copy

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

from detlab.models.test_time_augs import DetTTAModel
from detlab.registry import MODELS, TRANSFORMS
from detlab.structures import DetDataSample
from detlab.utils import adopt_default_scope, apply_tta
from det_tta_case import CASES, model_cfg, retinanet_model_cfg, seeded_weights, tta_batch
from helpers import REPO_ROOT, require_coco128

# MMDetection 3.3's DetTTAModel around its RetinaNet and RTMDet with the same weights, on the
# same four views (tools/dev/measure_det_tta.py --case NAME): the merged detections of the photo.
MMDET_MERGED = dict(
    retinanet=dict(
        num=100, score_sum=16.610877990722656, labels=[1, 0, 0, 0, 0],
        scores=[0.2675406336784363, 0.2609025239944458, 0.25717905163764954,
                0.23872627317905426, 0.22272594273090363],
        boxes=[[224.87533569335938, 135.8340606689453, 381.0, 239.1408233642578],
               [212.65065002441406, 298.423583984375, 296.9102783203125, 302.57135009765625],
               [216.16607666015625, 276.9794006347656, 252.99647521972656, 316.46539306640625],
               [135.87008666992188, 302.7682189941406, 212.1884002685547, 326.4429016113281],
               [0.0, 298.0740051269531, 35.61895751953125, 323.2611083984375]]),
    rtmdet=dict(
        num=100, score_sum=62.26563262939453, labels=[0, 0, 0, 0, 0],
        scores=[0.9543948769569397, 0.9248387813568115, 0.9148102402687073,
                0.9109748601913452, 0.8937565088272095],
        boxes=[[83.38225555419922, 72.79336547851562, 480.98956298828125, 270.01641845703125],
               [79.95408630371094, 91.13778686523438, 417.3367004394531, 205.01531982421875],
               [202.6782989501953, 70.65902709960938, 499.672119140625, 212.63446044921875],
               [-89.19842529296875, 40.813385009765625, 239.46348571777344, 264.22210693359375],
               [83.79014587402344, 131.17347717285156, 499.672119140625, 380.8641052246094]]),
)


@pytest.mark.parametrize('case', sorted(CASES))
def test_merged_detections_equal_mmdetections(case):
    coco128 = require_coco128()
    expected = MMDET_MERGED[case]
    tta = MODELS.build(ConfigDict(CASES[case]['tta_model'], module=model_cfg(REPO_ROOT, case)))
    seeded_weights(tta.module, case)
    tta.eval()
    data = tta_batch(coco128, TRANSFORMS, case)
    assert len(data['inputs']) == 4  # two scales, flipped and not
    merged, = tta.test_step(data)
    pred = merged.pred_instances
    assert len(pred) == expected['num']
    assert pred.scores.sum().item() == pytest.approx(expected['score_sum'], rel=1e-5)
    assert pred.labels[:5].tolist() == expected['labels']
    assert torch.allclose(pred.scores[:5], torch.tensor(expected['scores']), atol=1e-6)
    assert torch.allclose(pred.bboxes[:5], torch.tensor(expected['boxes']), atol=1e-3)


def view(boxes, scores, labels, flip, direction='horizontal'):
    sample = DetDataSample(metainfo=dict(ori_shape=(50, 100), flip=flip,
                                         flip_direction=direction if flip else None))
    sample.pred_instances = InstanceData(bboxes=torch.tensor(boxes), scores=torch.tensor(scores),
                                         labels=torch.tensor(labels))
    return sample


def test_flipped_views_are_flipped_back_and_duplicates_suppressed():
    tta = DetTTAModel(module=retinanet_model_cfg(REPO_ROOT),
                      tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=2))
    plain = view([[10., 5., 30., 25.], [60., 10., 90., 40.]], [0.9, 0.3], [1, 2], flip=False)
    # The same first box seen in a horizontally flipped view (x -> 100 - x), scoring lower.
    flipped = view([[70., 5., 90., 25.], [0., 0., 5., 5.]], [0.8, 0.5], [1, 0], flip=True)
    merged, = tta.merge_preds([[plain, flipped]])
    pred = merged.pred_instances
    assert pred.scores.tolist() == pytest.approx([0.9, 0.5])  # max_per_img=2
    assert pred.bboxes.tolist() == [[10., 5., 30., 25.], [95., 0., 100., 5.]]
    assert pred.labels.tolist() == [1, 0]
    bboxes = tta.merge_aug_bboxes([torch.tensor([[0., 0., 10., 20.]])], None,
                                  [dict(ori_shape=(50, 100), flip=True,
                                        flip_direction='vertical')])
    assert bboxes.tolist() == [[0., 30., 10., 50.]]


def test_tta_cfg_needs_nms_and_max_per_img():
    with pytest.raises(ValueError, match='max_per_img'):
        DetTTAModel(module=retinanet_model_cfg(REPO_ROOT),
                    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5)))


def test_mmdetections_retinanet_config_brings_its_tta_and_tools_test_wraps_the_model():
    for path in (REPO_ROOT / 'tests/data/mmdet_3.3_configs/retinanet/retinanet_r50_fpn_1x_coco.py',
                 REPO_ROOT / 'configs/retinanet/retinanet_r50_fpn_1x_coco.py'):
        cfg = Config.fromfile(str(path))
        adopt_default_scope(cfg)
        assert cfg.tta_model.tta_cfg.nms.iou_threshold == 0.5
        apply_tta(cfg)
        assert cfg.model.type == 'DetTTAModel' and cfg.model.module.type == 'RetinaNet'
        assert cfg.test_dataloader.dataset.pipeline[1].type == 'TestTimeAug'
        cfg.model.module.backbone.init_cfg = None
        assert isinstance(MODELS.build(cfg.model), DetTTAModel)


def test_a_config_without_tta_gets_mmdetections_defaults():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/atss/atss_r50_fpn_1x_coco.py'))
    test_pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    with pytest.warns(UserWarning, match='tta_model'):
        apply_tta(cfg)
    assert cfg.model.tta_cfg == dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline[:-1] == test_pipeline[:-1]
    assert [t.type for t in pipeline[-1].transforms[0]] == ['RandomFlip', 'RandomFlip']
    assert 'flip_direction' in pipeline[-1].transforms[1][0].meta_keys
