"""MMDetection's build_* helpers for task modules build from TASK_UTILS."""
import pytest

from detlab.models import task_modules
from detlab.registry import TASK_UTILS


@pytest.mark.parametrize('helper, cfg, cls', [
    ('build_prior_generator', dict(type='MlvlPointGenerator', strides=[8]), 'MlvlPointGenerator'),
    ('build_anchor_generator', dict(type='AnchorGenerator', strides=[8], ratios=[1.], scales=[2]),
     'AnchorGenerator'),
    ('build_iou_calculator', dict(type='BboxOverlaps2D'), 'BboxOverlaps2D'),
    ('build_assigner', dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4),
     'MaxIoUAssigner'),
    ('build_sampler', dict(type='PseudoSampler'), 'PseudoSampler'),
    ('build_bbox_coder', dict(type='DeltaXYWHBBoxCoder'), 'DeltaXYWHBBoxCoder'),
])
def test_each_helper_builds_the_registered_class(helper, cfg, cls):
    with pytest.warns(DeprecationWarning, match='TASK_UTILS.build'):
        built = getattr(task_modules, helper)(cfg)
    assert type(built) is getattr(task_modules, cls)


def test_keyword_defaults_fill_missing_keys():
    with pytest.warns(DeprecationWarning):
        assigner = task_modules.build_assigner(dict(type='MaxIoUAssigner', pos_iou_thr=0.5),
                                               neg_iou_thr=0.3)
    assert assigner.neg_iou_thr == 0.3
    with pytest.warns(DeprecationWarning):
        gen = task_modules.build_prior_generator(dict(type='MlvlPointGenerator'),
                                                 default_args=dict(strides=[4, 8]))
    assert gen.num_levels == 2


def test_registry_aliases_are_task_utils():
    for alias in ('PRIOR_GENERATORS', 'ANCHOR_GENERATORS', 'BBOX_ASSIGNERS', 'BBOX_SAMPLERS',
                  'BBOX_CODERS', 'IOU_CALCULATORS'):
        assert getattr(task_modules, alias) is TASK_UTILS
