"""Model configs from detlab's ``configs/`` folder, under MMDetection's testing names."""
import copy
from pathlib import Path

from mmengine.config import Config, ConfigDict

import detlab


def _config_path(fname: str) -> Path:
    """``configs/<fname>`` of the detlab source tree."""
    config_dir = Path(detlab.__file__).resolve().parent.parent / 'configs'
    path = config_dir / fname
    if not path.is_file():
        raise FileNotFoundError(f'no config {fname!r} in {config_dir} (the configs/ folder of a '
                                'detlab source checkout); give a path relative to it, e.g. '
                                "'retinanet/retinanet_r50_fpn_1x_coco.py'")
    return path


def get_detector_cfg(fname: str) -> ConfigDict:
    """A deep copy of the ``model`` of ``configs/<fname>``, free to modify."""
    return copy.deepcopy(Config.fromfile(_config_path(fname)).model)


def get_roi_head_cfg(fname: str) -> ConfigDict:
    """The ``roi_head`` of ``configs/<fname>`` with its ``train_cfg``/``test_cfg`` taken from
    the model's ``rcnn`` entries, as a two-stage detector passes them."""
    model = get_detector_cfg(fname)
    roi_head = model.roi_head
    train_cfg = None if model.get('train_cfg') is None else model.train_cfg.rcnn
    test_cfg = None if model.get('test_cfg') is None else model.test_cfg.rcnn
    roi_head.update(dict(train_cfg=train_cfg, test_cfg=test_cfg))
    return roi_head
