"""Trained weights of detlab's configs, by config name: the checkpoints MMDetection 3.3
publishes for the same configs (URLs and file names from its ``configs/*/metafile.yml``).

detlab downloads nothing: a checkpoint is read from the torch hub cache
(``<torch hub dir>/checkpoints/<file name>``), and when it is absent the error names the URL
and that path.
"""
from pathlib import Path
from typing import Optional, Union

from detlab.utils.checkpoint import hub_cache_path

_V2 = 'https://download.openmmlab.com/mmdetection/v2.0/'
_V3 = 'https://download.openmmlab.com/mmdetection/v3.0/'

#: Config name -> checkpoint URL.
MODEL_ZOO_WEIGHTS = {
    'atss_r50_fpn_1x_coco':
        _V2 + 'atss/atss_r50_fpn_1x_coco/atss_r50_fpn_1x_coco_20200209-985f7bd0.pth',
    'cascade-mask-rcnn_r50_fpn_1x_coco':
        _V2 + 'cascade_rcnn/cascade_mask_rcnn_r50_fpn_1x_coco/'
        'cascade_mask_rcnn_r50_fpn_1x_coco_20200203-9d4dcb24.pth',
    'cascade-rcnn_r50_fpn_1x_coco':
        _V2 + 'cascade_rcnn/cascade_rcnn_r50_fpn_1x_coco/'
        'cascade_rcnn_r50_fpn_1x_coco_20200316-3dc56deb.pth',
    'faster-rcnn_r50_fpn_1x_coco':
        _V2 + 'faster_rcnn/faster_rcnn_r50_fpn_1x_coco/'
        'faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth',
    'fcos_r50-caffe_fpn_gn-head_1x_coco':
        _V2 + 'fcos/fcos_r50_caffe_fpn_gn-head_1x_coco/'
        'fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth',
    'htc_r50_fpn_1x_coco':
        _V2 + 'htc/htc_r50_fpn_1x_coco/htc_r50_fpn_1x_coco_20200317-7332cf16.pth',
    'retinanet_r50_fpn_1x_coco':
        _V2 + 'retinanet/retinanet_r50_fpn_1x_coco/'
        'retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth',
    'rpn_r50_fpn_1x_coco':
        _V2 + 'rpn/rpn_r50_fpn_1x_coco/rpn_r50_fpn_1x_coco_20200218-5525fa2e.pth',
    'rtmdet_tiny_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet_tiny_8xb32-300e_coco/'
        'rtmdet_tiny_8xb32-300e_coco_20220902_112414-78e30dcc.pth',
    'rtmdet_s_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet_s_8xb32-300e_coco/'
        'rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth',
    'rtmdet_m_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet_m_8xb32-300e_coco/'
        'rtmdet_m_8xb32-300e_coco_20220719_112220-229f527c.pth',
    'rtmdet_l_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet_l_8xb32-300e_coco/'
        'rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth',
    'rtmdet_x_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet_x_8xb32-300e_coco/'
        'rtmdet_x_8xb32-300e_coco_20220715_230555-cc79b9ae.pth',
    'rtmdet-ins_tiny_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet-ins_tiny_8xb32-300e_coco/'
        'rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth',
    'rtmdet-ins_s_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet-ins_s_8xb32-300e_coco/'
        'rtmdet-ins_s_8xb32-300e_coco_20221121_212604-fdc5d7ec.pth',
    'rtmdet-ins_m_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet-ins_m_8xb32-300e_coco/'
        'rtmdet-ins_m_8xb32-300e_coco_20221123_001039-6eba602e.pth',
    'rtmdet-ins_l_8xb32-300e_coco':
        _V3 + 'rtmdet/rtmdet-ins_l_8xb32-300e_coco/'
        'rtmdet-ins_l_8xb32-300e_coco_20221124_103237-78d1d652.pth',
    'rtmdet-ins_x_8xb16-300e_coco':
        _V3 + 'rtmdet/rtmdet-ins_x_8xb16-300e_coco/'
        'rtmdet-ins_x_8xb16-300e_coco_20221124_111313-33d4595b.pth',
    'rtmdet_x_p6_4xb8-300e_coco':
        'https://github.com/orange0-jp/orange-weights/releases/download/v0.1.0rtmdet-p6/'
        'rtmdet_x_p6_4xb8-300e_coco-bf32be58.pth',
}


def model_zoo_weights(model: Union[str, Path, object]) -> Optional[str]:
    """The checkpoint URL of a config name, or None (a file path, a Config, or a name
    without published weights, such as the quickstart configs)."""
    if not isinstance(model, str) or Path(model).suffix == '.py':
        return None
    return MODEL_ZOO_WEIGHTS.get(model)


def model_zoo_cache_path(name: str) -> Optional[str]:
    """Where a config name's checkpoint must be (the torch hub cache), or None."""
    url = model_zoo_weights(name)
    return None if url is None else hub_cache_path(url)
