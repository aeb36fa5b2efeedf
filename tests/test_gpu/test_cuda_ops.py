"""detlab's own formulations of ops on a CUDA GPU: RoIAlign (torchvision's kernel there, not
the CPU's thread split), deformable attention's gather and grid_sample paths, and the
DynamicSoftLabelAssigner's all-columns path, against references on the same device or the
CPU's results.

Skipped, with the reason, on machines without CUDA. Each test runs small inputs (well under a
second). Tolerances: the same float32 arithmetic summed in another order (a relative 1e-5 and
an absolute 1e-5 on values of order 1, as the CPU tests of these ops use; for deformable
attention's gradients the absolute one scales with the tensor's largest entry and the whole
tensor's error is under 1e-5 of its norm).
"""
import pytest
import torch
import torchvision
from mmengine.structures import InstanceData

from detlab.models.layers.transformer import MultiScaleDeformableAttention, \
    multi_scale_deformable_attn
from detlab.models.roi_heads.roi_extractors.roi_align import RoIAlign, roi_align_threads
from detlab.models.task_modules.assigners import DynamicSoftLabelAssigner
from helpers import deformable_attn_inputs, mmcv_deformable_attn_reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU; this machine has none')

RTOL, ATOL = 1e-5, 1e-5


def roi_case(device: str, num_rois: int = 600):
    """A (2, 8, 40, 48) feature map and ``num_rois`` (K, 5) RoIs of both images, seeded."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 8, 40, 48, generator=gen)
    xy = torch.rand(num_rois, 2, generator=gen) * torch.tensor([300., 250.])
    wh = torch.rand(num_rois, 2, generator=gen) * 90 + 1
    batch = torch.randint(0, 2, (num_rois, 1), generator=gen).float()
    rois = torch.cat([batch, xy, xy + wh], 1)
    return feats.to(device).requires_grad_(), rois.to(device)


@pytest.mark.parametrize('aligned,sampling_ratio', [(True, 0), (False, 2)])
def test_roi_align_on_cuda_is_torchvisions_kernel(aligned, sampling_ratio):
    """CUDA tensors are never split over CPU threads: the output is torchvision's on the GPU
    bit for bit, its gradient torchvision's (atomic adds: to rounding), and both equal the
    CPU's (threaded there) to rounding."""
    feats, rois = roi_case('cuda')
    assert roi_align_threads(feats, rois) == 1
    layer = RoIAlign((7, 7), spatial_scale=1 / 8, sampling_ratio=sampling_ratio, aligned=aligned)
    got = layer(feats, rois)
    expected = torchvision.ops.roi_align(feats, rois, (7, 7), 1 / 8, sampling_ratio, aligned)
    assert got.is_cuda and torch.equal(got, expected)
    grad_out = torch.randn_like(got)
    got_grad, = torch.autograd.grad(got, feats, grad_out)
    expected_grad, = torch.autograd.grad(expected, feats, grad_out)
    torch.testing.assert_close(got_grad, expected_grad, rtol=RTOL, atol=ATOL)

    cpu_feats, cpu_rois = roi_case('cpu')
    cpu = layer(cpu_feats, cpu_rois)
    cpu_grad, = torch.autograd.grad(cpu, cpu_feats, grad_out.cpu())
    torch.testing.assert_close(got.cpu(), cpu, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(got_grad.cpu(), cpu_grad, rtol=RTOL, atol=ATOL)


# Fewer or more queries than values take the gather path (embedding_bag, sampled_addmm,
# argsort); as many as the values take grid_sample's forward with the row-sum value gradient.
@pytest.mark.parametrize('bs,shapes,heads,points,queries', [
    (2, [(7, 9), (4, 5), (2, 3)], 4, 3, 11),
    (1, [(12, 10), (6, 5), (3, 3), (2, 2)], 8, 4, 300),
    (2, [(4, 5), (2, 3)], 4, 3, 26),
])
def test_deformable_attention_on_cuda_equals_grid_sample_with_gradients(bs, shapes, heads,
                                                                        points, queries):
    (value, locations, weights), spatial_shapes = deformable_attn_inputs(
        bs, shapes, heads, 8, queries, points, device='cuda')
    expected = mmcv_deformable_attn_reference()(value, spatial_shapes.cuda(), locations, weights)
    got = multi_scale_deformable_attn(value, spatial_shapes, locations, weights)
    assert got.is_cuda and got.shape == (bs, queries, heads * 8)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL)
    grad_out = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, (value, locations, weights), grad_out)
    got_grads = torch.autograd.grad(got, (value, locations, weights), grad_out)
    for name, g, e in zip(('value', 'locations', 'weights'), got_grads, expected_grads):
        # The locations' gradient sums terms of both signs scaled by the level's size: its
        # rounding is relative to the tensor's largest entries, not to each element.
        scale = float(e.abs().max())
        torch.testing.assert_close(g, e, rtol=RTOL, atol=ATOL * max(1.0, scale), msg=name)
        assert (g - e).norm() <= RTOL * e.norm() and g.abs().sum() > 0, name


def test_deformable_attention_module_trains_under_bf16_autocast_on_cuda():
    """A decoder's deformable attention (gather path) forward and backward under bf16
    autocast, as --amp bf16 runs it: float32 gathers, finite gradients everywhere."""
    torch.manual_seed(0)
    attention = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=2,
                                              num_points=2, batch_first=True).cuda()
    shapes = torch.tensor([[8, 10], [4, 5]], device='cuda')
    value = torch.randn(2, 100, 32, device='cuda')
    query = torch.randn(2, 30, 32, device='cuda')
    reference_points = torch.rand(2, 30, 2, 2, device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16):
        output = attention(query, value=value, reference_points=reference_points,
                           spatial_shapes=shapes,
                           level_start_index=torch.tensor([0, 80], device='cuda'))
    assert output.shape == (2, 30, 32)
    output.float().square().mean().backward()
    for name, param in attention.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_dynamic_soft_label_assignment_on_cuda_equals_the_cpus():
    """On CUDA the assigner keeps every prior column (no host sync); on the CPU it compacts
    to the candidate columns: the same assignment of a seeded batch of two images."""
    gen = torch.Generator().manual_seed(0)
    ys, xs = torch.meshgrid(torch.arange(0, 64, 8.), torch.arange(0, 64, 8.), indexing='ij')
    priors = torch.stack([xs.flatten(), ys.flatten(), torch.full((64,), 8.),
                          torch.full((64,), 8.)], 1)
    sizes = torch.rand(2, 64, 4, generator=gen) * 20 + 2
    boxes = torch.cat([priors[:, :2] - sizes[..., :2], priors[:, :2] + sizes[..., 2:]], -1)
    scores = torch.randn(2, 64, 4, generator=gen)
    gt_bboxes = torch.tensor([[[4., 4., 30., 28.], [20., 18., 60., 50.], [33., 2., 41., 12.]],
                              [[0., 30., 40., 63.], [0., 0., 0., 0.], [0., 0., 0., 0.]]])
    gt_labels = torch.tensor([[1, 3, 0], [2, -1, -1]])
    gt_valid = torch.tensor([[True, True, True], [True, False, False]])
    prior_valid = torch.ones(2, 64, dtype=torch.bool)
    prior_valid[1, :8] = False
    assigner = DynamicSoftLabelAssigner(topk=5)
    inputs = (priors, boxes, scores, prior_valid, gt_bboxes, gt_labels, gt_valid)
    cpu = assigner.assign_batch(*inputs)
    gpu = assigner.assign_batch(*(t.cuda() for t in inputs))
    gt_inds, overlaps, labels = (t.cpu() for t in gpu)
    assert (cpu[0] > 0).any()
    assert torch.equal(gt_inds, cpu[0]) and torch.equal(labels, cpu[2])
    torch.testing.assert_close(overlaps, cpu[1], rtol=RTOL, atol=1e-6)
    # The per-image assign on CUDA gives the batch's first image.
    single = assigner.assign(
        InstanceData(priors=priors.cuda(), bboxes=boxes[0].cuda(), scores=scores[0].cuda()),
        InstanceData(bboxes=gt_bboxes[0].cuda(), labels=gt_labels[0].cuda()))
    assert torch.equal(single.gt_inds.cpu(), cpu[0][0])


def _cuda_peak_above_start(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def test_focal_loss_on_cuda_is_the_fused_loss_and_equals_the_cpus():
    """On CUDA FocalLoss with (N,) labels takes the fused loss (mmcv's formulas, as MMDetection
    there), which keeps only logits and labels for backward; the CPU keeps MMDetection's
    element-wise formula. Loss and gradients agree to float tolerance, and the fused step's
    peak memory is under half the element-wise formula's on the same GPU."""
    from detlab.models.losses.focal_loss import py_sigmoid_focal_loss
    from detlab.registry import MODELS
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 80, generator=gen) * 1.5  # mmcv's log(1 - p): |logit| < ~6
    labels = torch.randint(0, 81, (20000, ), generator=gen)
    weight = torch.rand(20000, generator=gen)
    focal = MODELS.build(dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25))
    results, peaks = {}, {}
    for device in ('cpu', 'cuda'):
        x = logits.to(device).requires_grad_()

        def step():
            loss = focal(x, labels.to(device), weight.to(device), avg_factor=1234.0)
            loss.backward()
            results[device] = (loss.detach().cpu(), x.grad.cpu())
        if device == 'cuda':
            peaks['fused'] = _cuda_peak_above_start(step)
        else:
            step()
    assert results['cuda'][0].item() == pytest.approx(results['cpu'][0].item(), rel=1e-5)
    assert torch.allclose(results['cuda'][1], results['cpu'][1], rtol=1e-4, atol=1e-8)

    x = logits.cuda().requires_grad_()
    one_hot = torch.nn.functional.one_hot(labels.cuda(), 81)[:, :80]
    peaks['element-wise'] = _cuda_peak_above_start(
        lambda: py_sigmoid_focal_loss(x, one_hot, weight.cuda(), avg_factor=1234.0).backward())
    assert peaks['fused'] < 0.5 * peaks['element-wise'], peaks


def test_deform_roi_pool_on_cuda_equals_the_cpus_and_runs_under_bf16_autocast():
    """detlab's deformable RoI pooling (tensor ops, no compiled kernel) gives the CPU's output
    and gradients on the GPU, and the ModulatedDeformRoIPoolPack trains under bf16 autocast
    within bf16's precision of float32."""
    from detlab.models.roi_heads.roi_extractors import (ModulatedDeformRoIPoolPack,
                                                        deform_roi_pool)
    gen = torch.Generator().manual_seed(1)
    offset = torch.randn(200, 2, 7, 7, generator=gen) * 0.5
    grad_out = torch.randn(200, 8, 7, 7, generator=gen)
    results = {}
    for device in ('cpu', 'cuda'):
        feats, rois = roi_case(device, num_rois=200)
        off = offset.to(device).requires_grad_()
        out = deform_roi_pool(feats, rois, off, 7, 1 / 8, 0, 0.1)
        grads = torch.autograd.grad(out, (feats, off), grad_out.to(device))
        results[device] = [t.detach().cpu() for t in (out, *grads)]
    for got, want in zip(results['cuda'], results['cpu']):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

    feats, rois = roi_case('cuda', num_rois=200)
    torch.manual_seed(0)
    layer = ModulatedDeformRoIPoolPack(7, 8, 64, spatial_scale=1 / 8).cuda()
    with torch.no_grad():
        layer.offset_fc[-1].weight.normal_(0, 0.01)
    want = layer(feats, rois)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        got = layer(feats, rois)
    got.float().sum().backward()
    assert torch.isfinite(layer.offset_fc[0].weight.grad).all()
    torch.testing.assert_close(got.float(), want.detach(), rtol=0.05, atol=0.05)
