"""A Mask R-CNN through tools/test.py (--out, --show-dir, bbox and segm AP) and DetInferencer."""
import json

import cv2
import mmcv
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from detlab.evaluation.metrics.dump_det_results import load_det_results
from helpers import REPO_ROOT, assert_ok, run_tool

pytestmark = pytest.mark.slow

SIZE = (120, 160)  # h, w of the generated images


def write_dataset(root):
    """Three images, each with a bright ellipse and its polygon annotation."""
    (root / 'images').mkdir()
    images, annotations = [], []
    for i in range(3):
        img = np.zeros((*SIZE, 3), np.uint8)
        cv2.ellipse(img, (50 + 20 * i, 60), (30, 20), 0, 0, 360, (255, 255, 255), -1)
        cv2.imwrite(str(root / 'images' / f'{i}.jpg'), img)
        contour = cv2.findContours((img[..., 0] > 0).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)[0][0]
        x, y, w, h = cv2.boundingRect(contour)
        images.append(dict(id=i, file_name=f'{i}.jpg', height=SIZE[0], width=SIZE[1]))
        annotations.append(dict(id=i + 1, image_id=i, category_id=1, iscrowd=0,
                                area=float(cv2.contourArea(contour)), bbox=[x, y, w, h],
                                segmentation=[contour.reshape(-1).astype(float).tolist()]))
    (root / 'ann.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=[dict(id=1, name='blob')])))


@pytest.fixture(scope='module')
def mask_rcnn(tmp_path_factory):
    """A small Mask R-CNN config (MMDetection's, with a ResNet-18 and one class) on the
    generated images, and a checkpoint of its randomly initialised weights."""
    from mmengine.config import Config

    from detlab.registry import MODELS
    from detlab.utils import adopt_default_scope
    root = tmp_path_factory.mktemp('mask_rcnn')
    write_dataset(root)
    config = root / 'mask_rcnn_small.py'
    config.write_text(f'''
_base_ = '{REPO_ROOT}/configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=dict(num_classes=1), mask_head=dict(num_classes=1)),
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=5)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(200, 150), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, dataset=dict(
    data_root='{root}', ann_file='ann.json', data_prefix=dict(img='images/'),
    metainfo=dict(classes=('blob', )), pipeline=test_pipeline))
test_evaluator = dict(ann_file='{root}/ann.json')
''')
    cfg = Config.fromfile(str(config))
    adopt_default_scope(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = root / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(checkpoint))
    return dict(root=root, config=config, checkpoint=checkpoint)


def test_test_tool_evaluates_masks_writes_rle_and_draws(mask_rcnn, tmp_path):
    out = tmp_path / 'results.pkl'
    output = assert_ok(run_tool('tools/test.py', mask_rcnn['config'], mask_rcnn['checkpoint'],
                                '--work-dir', tmp_path / 'work', '--out', out,
                                '--show-dir', 'shown'))
    assert 'coco/segm_mAP' in output and 'coco/bbox_mAP' in output
    records = load_det_results(str(out))
    assert len(records) == 3
    pred = records[0]['pred_instances']
    assert len(pred['masks']) == len(pred['labels']) == 5
    decoded = mask_util.decode(pred['masks'])  # in the original image, as MMDetection's
    assert decoded.shape == (*SIZE, 5)
    shown = sorted((tmp_path / 'work').rglob('shown/*.jpg'))
    assert [p.name for p in shown] == ['0.jpg', '1.jpg', '2.jpg']
    assert mmcv.imread(str(shown[0])).shape == (SIZE[0], 2 * SIZE[1], 3)  # gt | predictions


def test_inferencer_writes_masks_as_rle_in_its_json(mask_rcnn, tmp_path):
    from detlab.apis import DetInferencer
    inferencer = DetInferencer(str(mask_rcnn['config']), str(mask_rcnn['checkpoint']),
                               device='cpu', show_progress=False)
    images = str(mask_rcnn['root'] / 'images')
    result = inferencer(images, out_dir=str(tmp_path), no_save_pred=False, pred_score_thr=0.0)
    saved = json.loads((tmp_path / 'preds' / '0.json').read_text())
    assert set(saved) == {'labels', 'scores', 'bboxes', 'masks'}
    assert saved['masks'] == result['predictions'][0]['masks']
    assert isinstance(saved['masks'][0]['counts'], str)
    masks = mask_util.decode([dict(m, counts=m['counts'].encode()) for m in saved['masks']])
    assert masks.shape == (*SIZE, len(saved['labels']))
    assert mmcv.imread(str(tmp_path / 'vis' / '0.jpg')).shape == (*SIZE, 3)


def test_quickstart_trains_on_the_shapes_polygons_and_reports_mask_ap(tmp_path):
    from helpers import tiny_run_options
    result = run_tool('tools/train.py', 'configs/quickstart/mask-rcnn_r18_fpn_shapes.py',
                      '--work-dir', tmp_path / 'work', '--cfg-options',
                      *tiny_run_options(tmp_path / 'shapes', max_iters=2))
    output = assert_ok(result)
    assert 'loss_mask' in output
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert key in output, key
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
