"""SimOTAAssigner: the path every device but the CPU takes (classification cost over
all prior columns, no host sync) assigns exactly as the CPU's compacted path."""
import pytest
import torch

from helpers import record_syncing_ops
from detlab.models.task_modules.assigners import SimOTAAssigner, sim_ota_assigner
from detlab.models.task_modules.assigners.assign_result import candidate_columns


def random_batch(generator, num_gts, num_priors=150, num_classes=6):
    """Priors on a 10 x 15 grid of 8-pixel cells (x, y, stride, stride), predictions
    near them, probabilities in (0, 1), and gts padded to the most gts (zeros, label
    -1); images may have no gts."""
    ys, xs = torch.meshgrid(torch.arange(10.) * 8 + 4, torch.arange(15.) * 8 + 4,
                            indexing='ij')
    priors = torch.stack([xs.flatten(), ys.flatten(), torch.full((num_priors, ), 8.),
                          torch.full((num_priors, ), 8.)], dim=1)
    batch = len(num_gts)
    centers = priors[None, :, :2] + torch.randn(batch, num_priors, 2, generator=generator) * 4
    sizes = 6 + torch.rand(batch, num_priors, 2, generator=generator) * 30
    decoded = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=-1)
    scores = torch.rand(batch, num_priors, num_classes, generator=generator)
    most = max(max(num_gts), 1)
    gt_bboxes, gt_labels = torch.zeros(batch, most, 4), torch.full((batch, most), -1)
    gt_valid = torch.zeros(batch, most, dtype=torch.bool)
    for i, count in enumerate(num_gts):
        xy = torch.rand(count, 2, generator=generator) * torch.tensor([100., 60.])
        wh = 6 + torch.rand(count, 2, generator=generator) * 40
        gt_bboxes[i, :count] = torch.cat([xy, xy + wh], dim=1)
        gt_labels[i, :count] = torch.randint(num_classes, (count, ), generator=generator)
        gt_valid[i, :count] = True
    prior_valid = torch.ones(batch, num_priors, dtype=torch.bool)
    return priors, decoded, scores, prior_valid, gt_bboxes, gt_labels, gt_valid


def assign(batch, compact: bool):
    assigner = SimOTAAssigner(center_radius=2.5, candidate_topk=10)
    assigner.compact_on_cpu = compact
    return assigner.assign_batch(*batch)


@pytest.mark.parametrize('num_gts', [(4, 0, 7), (1, ), (0, 0), (12, 3, 0, 5)])
def test_dense_path_assigns_exactly_as_the_compacted_path(num_gts):
    generator = torch.Generator().manual_seed(sum(num_gts) + len(num_gts))
    batch = random_batch(generator, num_gts)
    compacted, dense = assign(batch, compact=True), assign(batch, compact=False)
    for name, a, b in zip(('gt_inds', 'max_overlaps', 'labels'), compacted, dense):
        assert torch.equal(a, b), name
    gt_inds = compacted[0]
    for i, count in enumerate(num_gts):
        matched = set(gt_inds[i][gt_inds[i] > 0].tolist())
        assert matched <= set(range(1, count + 1))
        assert bool(matched) == (count > 0)


def test_classification_costs_are_the_same_bits_on_both_paths(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    _, _, scores, _, _, gt_labels, _ = random_batch(generator, (3, 5))
    candidate = torch.rand(scores.shape[:2], generator=generator) < 0.3
    candidate[:, :20] = False  # columns no image has as a candidate
    columns = candidate_columns(candidate)
    assert len(columns) < scores.shape[1]
    compacted = SimOTAAssigner._cls_cost(scores, gt_labels, columns)
    dense = SimOTAAssigner._cls_cost(scores, gt_labels, candidate_columns(candidate, False))
    assert torch.equal(compacted[:, columns], dense[:, columns])
    assert (compacted[:, :20] == 0).all() and (dense[:, :20] > 0).all()
    # Chunked over the priors (here 7 priors x 2 images x 5 gts x 6 classes at a time).
    monkeypatch.setattr(sim_ota_assigner, 'CLS_COST_CHUNK_ELEMENTS', 7 * 2 * 5 * 6)
    assert torch.equal(SimOTAAssigner._cls_cost(scores, gt_labels, slice(None)), dense)


def test_dense_path_never_reads_values_back_to_the_host():
    generator = torch.Generator().manual_seed(1)
    batch = random_batch(generator, (4, 0, 7))
    with record_syncing_ops() as recorder:
        assign(batch, compact=False)
    assert 'aten.topk' in recorder.names  # the matching ran
    assert not recorder.syncing, recorder.syncing
    with record_syncing_ops() as recorder:
        assign(batch, compact=True)
    assert recorder.syncing == {'aten.nonzero'}  # the CPU's compaction
