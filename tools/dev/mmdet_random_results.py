"""Print MMDetection 3.3's random test data: AssignResult.random, SamplingResult.random
and mmdet.testing's demo_mm_inputs / demo_mm_proposals, for fixed seeds.

Not run by CI. tests/test_models/test_task_modules/test_random_results.py and
tests/test_testing/test_demo_inputs.py pin these values, so detlab draws MMDetection's.

    python tools/dev/mmdet_random_results.py
"""
import torch
from mmdet_reference import import_mmdet


def main() -> None:
    import_mmdet()
    from mmdet.models.task_modules.assigners import AssignResult
    from mmdet.models.task_modules.samplers import SamplingResult

    assign = AssignResult.random(rng=3, num_gts=4, num_preds=10)
    print('AssignResult.random(rng=3, num_gts=4, num_preds=10)')
    for key in ('gt_inds', 'labels', 'max_overlaps'):
        print(f'  {key}: {getattr(assign, key).tolist()}')
    torch.manual_seed(0)  # RandomSampler draws with torch.randperm
    sampling = SamplingResult.random(rng=10)
    print('torch.manual_seed(0); SamplingResult.random(rng=10)')
    for key in ('num_gts', 'pos_inds', 'neg_inds', 'pos_is_gt', 'avg_factor'):
        value = getattr(sampling, key)
        print(f'  {key}: {value.tolist() if isinstance(value, torch.Tensor) else value}')
    print(f'  pos_priors: {sampling.pos_priors.tolist()}')

    from mmdet.testing import demo_mm_inputs, demo_mm_proposals
    data = demo_mm_inputs(batch_size=1, image_shapes=[(3, 20, 30)], num_items=[2],
                          with_mask=True)
    sample = data['data_samples'][0]
    print("demo_mm_inputs(1, [(3, 20, 30)], num_items=[2], with_mask=True)")
    print(f"  inputs[0][:, 0, 0]: {data['inputs'][0][:, 0, 0].tolist()}")
    print(f'  gt bboxes: {sample.gt_instances.bboxes.tolist()}')
    print(f'  gt labels: {sample.gt_instances.labels.tolist()}')
    print(f'  mask pixels: {sample.gt_instances.masks.masks.sum(axis=(1, 2)).tolist()}')
    print(f'  ignored bboxes: {sample.ignored_instances.bboxes.tolist()}')
    proposals = demo_mm_proposals([(3, 20, 30)], 2)[0]
    print("demo_mm_proposals([(3, 20, 30)], 2)")
    print(f'  bboxes: {proposals.bboxes.tolist()}')
    print(f'  scores: {proposals.scores.tolist()}')


if __name__ == '__main__':
    main()
