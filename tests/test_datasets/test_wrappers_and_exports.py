"""MultiImageMixDataset, get_loading_pipeline, and the names detlab.datasets exports."""
import json

import pytest

import detlab.datasets
from detlab.datasets import MultiImageMixDataset, get_loading_pipeline
from detlab.registry import DATASETS, TRANSFORMS

IMAGES = [dict(id=i, file_name=f'{i}.jpg', width=20, height=10) for i in (1, 2, 3)]
ANNOTATIONS = [dict(id=i, image_id=i, category_id=1, bbox=[1, 1, 5, 5], area=25)
               for i in (1, 2, 3)]


@TRANSFORMS.register_module(name='TestMixWithNext', force=True)
class MixWithNext:
    """Mixes in the next image: records the ids it was given."""

    def get_indexes(self, dataset):
        return (self.current + 1) % len(dataset)

    def __call__(self, results):
        results['mixed_with'] = [r['img_id'] for r in results['mix_results']]
        return results


@TRANSFORMS.register_module(name='TestFailsTwice', force=True)
class FailsTwice:
    """Returns None the first two calls (as a random crop that found no box)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, results):
        self.calls += 1
        return None if self.calls <= 2 else dict(results, tries=self.calls)


def build_mix(tmp_path, pipeline, **kwargs):
    (tmp_path / 'ann.json').write_text(json.dumps(dict(
        images=IMAGES, annotations=ANNOTATIONS, categories=[dict(id=1, name='x')])))
    inner = dict(type='CocoDataset', data_root=str(tmp_path), ann_file='ann.json',
                 metainfo=dict(classes=('x',)), test_mode=True)
    return DATASETS.build(dict(type='MultiImageMixDataset', dataset=inner, pipeline=pipeline,
                               **kwargs))


def test_multi_image_mix_feeds_mix_results_and_retries(tmp_path):
    mixed = build_mix(tmp_path, [dict(type='TestMixWithNext'), dict(type='TestFailsTwice')])
    assert isinstance(mixed, MultiImageMixDataset) and len(mixed) == 3
    assert mixed.metainfo['classes'] == ('x',)
    mixed.pipeline[0].current = 1
    sample = mixed[1]
    assert sample['img_id'] == 2 and sample['mixed_with'] == [3] and sample['tries'] == 3
    assert 'mix_results' not in sample
    mixed.update_skip_type_keys(['TestMixWithNext'])
    assert 'mixed_with' not in mixed[0]
    with pytest.raises(TypeError, match='skip_type_keys'):
        mixed.update_skip_type_keys([3])


def test_multi_image_mix_gives_up_naming_the_transform(tmp_path):
    mixed = build_mix(tmp_path, [dict(type='TestFailsTwice')], max_refetch=2)
    with pytest.raises(RuntimeError, match='TestFailsTwice returned None 2 times'):
        mixed[0]


def test_get_loading_pipeline_keeps_the_loading_steps():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(10, 10)), dict(type='PackDetInputs')]
    assert get_loading_pipeline(pipeline) == pipeline[:2]
    with pytest.raises(ValueError, match='annotation-loading'):
        get_loading_pipeline(pipeline[:1] + pipeline[2:])


def test_exports_mmdetection_names_for_the_parts_detlab_has():
    """what mmdet.datasets exports, for the parts detlab has."""
    mmdet_names = ['BaseDetDataset', 'CocoDataset', 'XMLDataset', 'VOCDataset',
                   'ConcatDataset', 'MultiImageMixDataset', 'AspectRatioBatchSampler',
                   'get_loading_pipeline']
    for name in mmdet_names:
        assert name in detlab.datasets.__all__
        assert getattr(detlab.datasets, name) is not None
    assert detlab.datasets.ConcatDataset is DATASETS.get('ConcatDataset')
    # RepeatDataset and ClassBalancedDataset are mmengine's, reached through the registry
    assert DATASETS.get('RepeatDataset') is not None
    assert DATASETS.get('ClassBalancedDataset') is not None
