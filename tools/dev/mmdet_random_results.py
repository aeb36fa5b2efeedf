"""Print MMDetection 3.3's AssignResult.random / SamplingResult.random for fixed seeds.

Not run by CI. tests/test_models/test_task_modules/test_random_results.py pins these values,
so detlab's ``random`` classmethods draw MMDetection's values for the same seed.

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


if __name__ == '__main__':
    main()
