"""Measure MMDetection 3.3's losses and detections of DETR, Deformable DETR, Conditional
DETR, DAB-DETR and DINO.

The numbers printed here are pinned in
``tests/test_models/test_detectors/test_detr_family.py``. Each model is built
from MMDetection's own config (``tests/data/mmdet_3.3_configs``, no pretrained
backbone) in detlab with ``torch.manual_seed(0)`` and ``init_weights()``; its
state_dict is loaded strictly into MMDetection's model built from the same
file. Both see the same two coco128 photos (``000000000009.jpg`` with 8 boxes,
``000000000025.jpg`` with 2), each resized to a long side of 320 px and padded
to one 320x240 batch, so the padding masks are exercised. Losses are taken in
train mode after ``torch.manual_seed(1)`` (dropout and DINO's denoising queries
draw from it), detections in eval mode.

Run (not part of CI)::

    PYTHONPATH=$PWD python tools/dev/measure_detr.py [--write] [detr dino ...]

``--write`` stores the numbers in ``REFERENCE_FILE``, which the tests read.
"""
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
COCO128 = REPO_ROOT.parent / 'shared' / 'data' / 'coco128'
MMDET_CONFIGS = REPO_ROOT / 'tests' / 'data' / 'mmdet_3.3_configs'
IMAGES = ('000000000009.jpg', '000000000025.jpg')
LONG_SIDE = 320
REFERENCE_FILE = REPO_ROOT / 'tests' / 'data' / 'mmdet_3.3_reference' / 'detr_family.json'
#: Model name -> MMDetection config file.
CONFIGS = {
    'detr': 'detr/detr_r50_8xb2-150e_coco.py',
    'deformable_detr': 'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'deformable_detr_refine_twostage':
    'deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
    'dino': 'dino/dino-4scale_r50_8xb2-12e_coco.py',
    'conditional_detr': 'conditional_detr/conditional-detr_r50_8xb2-50e_coco.py',
    'dab_detr': 'dab_detr/dab-detr_r50_8xb2-50e_coco.py',
}
#: (w, h) of both images in an unpadded batch.
UNPADDED_SIZE = (320, 240)
#: Models measured on an unpadded batch. DINO picks its queries by top-k over
#: the encoder tokens' scores; the padded tokens of a padded batch all score
#: exactly alike, and the order top-k puts such ties in moves with float
#: rounding anywhere else in the array, so two correct implementations can pair
#: different proposals with the learned queries. Without padding there are no
#: such ties. (Deformable DETR is measured padded, which tests the masks.)
UNPADDED = ('dino', )
#: Models whose initialised weights get seeded noise (``NOISE`` x a standard
#: normal draw after ``torch.manual_seed(2)``) before they are measured. Freshly
#: initialised, Conditional DETR scores many queries exactly alike (top-k ties)
#: and DAB-DETR's box branch starts at zero, so its anchors would never move
#: and the refinement between decoder layers would go untested.
PERTURBED = ('conditional_detr', 'dab_detr')
NOISE = 0.02
#: Detections compared per image.
TOP_K = 5


def model_config(name: str) -> dict:
    """The config's ``model`` as a plain dict, without the ImageNet download."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(MMDET_CONFIGS / CONFIGS[name]))
    model = cfg.model.to_dict()
    model['backbone']['init_cfg'] = None
    return model


def raw_batch(keep_ratio: bool = True):
    """The two photos resized (keep ratio, long side 320; or both to 320x240)
    with their gt boxes.

    Returns:
        list[dict]: ``img`` (H, W, 3) uint8 BGR, ``bboxes`` (N, 4) float32
        pixels of the resized image, ``labels`` (N,), ``ori_shape``,
        ``scale_factor`` (w, h).
    """
    import mmcv
    coco = json.loads((COCO128 / 'annotations' / 'instances_train2017.json').read_text())
    cat_ids = sorted(c['id'] for c in coco['categories'])
    items = []
    for file_name in IMAGES:
        info = next(i for i in coco['images'] if i['file_name'] == file_name)
        anns = [a for a in coco['annotations'] if a['image_id'] == info['id']
                and not a.get('iscrowd', 0)]
        img = mmcv.imread(str(COCO128 / 'images' / 'train2017' / file_name))
        ori_h, ori_w = img.shape[:2]
        scale = LONG_SIDE / max(ori_h, ori_w)
        new_w, new_h = int(ori_w * scale + 0.5), int(ori_h * scale + 0.5)
        if not keep_ratio:
            new_w, new_h = UNPADDED_SIZE
        img = mmcv.imresize(img, (new_w, new_h))
        w_scale, h_scale = new_w / ori_w, new_h / ori_h
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                         dtype=np.float32) * np.array([w_scale, h_scale, w_scale, h_scale],
                                                      dtype=np.float32)
        labels = np.array([cat_ids.index(a['category_id']) for a in anns], dtype=np.int64)
        items.append(dict(img=img, bboxes=boxes, labels=labels, ori_shape=(ori_h, ori_w),
                          scale_factor=(w_scale, h_scale)))
    return items


def preprocessed_batch(sample_type, padded: bool = True):
    """(2, 3, 240, 320) normalised RGB batch and ``sample_type`` samples with gts;
    the second image padded (``padded``) or both resized to fill the batch."""
    from mmengine.structures import InstanceData
    items = raw_batch(keep_ratio=padded)
    batch_h = max(i['img'].shape[0] for i in items)
    batch_w = max(i['img'].shape[1] for i in items)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    inputs = torch.zeros(len(items), 3, batch_h, batch_w)
    samples = []
    for k, item in enumerate(items):
        h, w = item['img'].shape[:2]
        rgb = torch.from_numpy(item['img'][..., ::-1].copy()).permute(2, 0, 1).float()
        inputs[k, :, :h, :w] = (rgb - mean) / std
        sample = sample_type(metainfo=dict(
            img_shape=(h, w), ori_shape=item['ori_shape'], scale_factor=item['scale_factor'],
            pad_shape=(batch_h, batch_w), batch_input_shape=(batch_h, batch_w)))
        sample.gt_instances = InstanceData(bboxes=torch.from_numpy(item['bboxes']),
                                           labels=torch.from_numpy(item['labels']))
        samples.append(sample)
    return inputs, samples


def build_detlab(name: str):
    """detlab's model of ``name``, seeded, initialised, in train mode."""
    from mmengine.logging import MMLogger

    from detlab.registry import MODELS
    from detlab.utils import register_all_modules
    register_all_modules()
    MMLogger.get_current_instance().setLevel('WARNING')  # init_weights logs every parameter
    torch.manual_seed(0)
    model = MODELS.build(model_config(name))
    model.init_weights()
    if name in PERTURBED:
        torch.manual_seed(2)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(torch.randn_like(param), alpha=NOISE)
    return model


def losses_and_detections(model, inputs, samples) -> dict:
    """Losses after ``manual_seed(1)`` in train mode, top detections in eval mode."""
    model.train()
    torch.manual_seed(1)
    losses = model.loss(inputs, copy.deepcopy(samples))
    losses = {k: float(v.item() if v.numel() == 1 else v.sum()) for k, v in losses.items()}
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, copy.deepcopy(samples))
    dets = [dict(num=len(r.pred_instances),
                 bboxes=r.pred_instances.bboxes[:TOP_K].tolist(),
                 scores=r.pred_instances.scores[:TOP_K].tolist(),
                 labels=r.pred_instances.labels[:TOP_K].tolist()) for r in results]
    return dict(losses=losses, detections=dets)


def main(names, write=False):
    sys.path.insert(0, str(REPO_ROOT / 'tools' / 'dev'))
    from mmdet_reference import import_mmdet
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample as MMDetDataSample
    from mmdet.utils import register_all_modules as mmdet_register
    for name in names:
        detlab_model = build_detlab(name)
        mmdet_register()
        mmdet_model = MMDET_MODELS.build(model_config(name))
        mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
        inputs, samples = preprocessed_batch(MMDetDataSample, padded=name not in UNPADDED)
        result = losses_and_detections(mmdet_model, inputs, samples)
        print(f'{name} = {json.dumps(result)}')
        if write:
            stored = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.exists() else {}
            stored[name] = result
            REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
            REFERENCE_FILE.write_text(json.dumps(stored, indent=1) + '\n')


if __name__ == '__main__':
    args = sys.argv[1:]
    write = '--write' in args
    main([a for a in args if a != '--write'] or list(CONFIGS), write=write)
