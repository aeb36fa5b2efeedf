"""A test config turned into its test-time-augmentation form, as MMDetection's
``tools/test.py --tta`` does it."""
import copy
import warnings

from mmengine.config import Config, ConfigDict

#: Used when a config has no ``tta_model``.
DEFAULT_TTA_MODEL = dict(
    type='DetTTAModel', tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
#: Metainfo a TTA view needs so that its flip can be undone.
TTA_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                 'flip_direction')


def apply_tta(cfg: Config) -> None:
    """Wrap ``cfg.model`` in ``cfg.tta_model`` and test on ``cfg.tta_pipeline``, in place.

    A config without ``tta_model`` gets :data:`DEFAULT_TTA_MODEL`; one without
    ``tta_pipeline`` gets its test pipeline with the final ``PackDetInputs``
    replaced by a ``TestTimeAug`` of a flipped and an unflipped view (with a
    warning each, as MMDetection).
    """
    if 'tta_model' not in cfg:
        warnings.warn('The config has no tta_model; using DetTTAModel with NMS at IoU 0.5 and '
                      '100 detections per image.')
        cfg.tta_model = copy.deepcopy(DEFAULT_TTA_MODEL)
    if 'tta_pipeline' not in cfg:
        warnings.warn('The config has no tta_pipeline; using the test pipeline with a flipped '
                      'and an unflipped view of each image.')
        dataset = cfg.test_dataloader.dataset
        while 'dataset' in dataset:
            dataset = dataset['dataset']
        cfg.tta_pipeline = copy.deepcopy(dataset.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                        [dict(type='PackDetInputs', meta_keys=TTA_META_KEYS)]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
