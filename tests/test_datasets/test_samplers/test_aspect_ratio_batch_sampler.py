"""AspectRatioBatchSampler groups portrait and landscape images."""
import pytest
from torch.utils.data import SequentialSampler

from detlab.registry import DATA_SAMPLERS

# index -> (width, height): P = portrait (w < h), L = landscape or square
SIZES = [(10, 20), (30, 20), (10, 20), (20, 20), (10, 30), (40, 10), (5, 9)]
PORTRAIT = {0, 2, 4, 6}


class SizedDataset:
    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def get_data_info(self, idx):
        width, height = self.sizes[idx]
        return dict(width=width, height=height)


def build(batch_size, drop_last=False, sizes=SIZES):
    sampler = SequentialSampler(SizedDataset(sizes))
    sampler.dataset = sampler.data_source  # mmengine samplers expose .dataset
    return DATA_SAMPLERS.build(dict(type='AspectRatioBatchSampler', sampler=sampler,
                                    batch_size=batch_size, drop_last=drop_last))


def test_full_batches_share_orientation():
    batches = list(build(2))
    assert batches == [[0, 2], [1, 3], [4, 6], [5]]
    for batch in batches[:-1]:
        assert len({idx in PORTRAIT for idx in batch}) == 1
    assert sorted(i for batch in batches for i in batch) == list(range(len(SIZES)))
    assert len(build(2)) == len(batches)


def test_leftovers_mixed_and_drop_last():
    assert list(build(3)) == [[0, 2, 4], [1, 3, 5], [6]]
    assert list(build(3, drop_last=True)) == [[0, 2, 4], [1, 3, 5]]
    assert len(build(3, drop_last=True)) == 2
    # leftovers of both buckets fill a batch together
    assert list(build(4)) == [[0, 2, 4, 6], [1, 3, 5]]
    assert list(build(4, drop_last=True)) == [[0, 2, 4, 6]]


def test_one_image_and_no_image():
    assert list(build(2, sizes=[(3, 4)])) == [[0]]
    assert list(build(2, drop_last=True, sizes=[(3, 4)])) == []
    assert list(build(2, sizes=[])) == [] and len(build(2, sizes=[])) == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='batch_size'):
        build(0)
    with pytest.raises(TypeError, match='Sampler'):
        DATA_SAMPLERS.build(dict(type='AspectRatioBatchSampler', sampler=[0, 1], batch_size=2))


def test_drop_last_drops_the_mixed_leftover_batch_as_mmdetection():
    """MMDetection drops the last leftover chunk under drop_last, even a full one."""
    one_of_each = [(10, 20), (30, 20)]  # a portrait and a landscape image
    assert list(build(2, sizes=one_of_each)) == [[0, 1]]
    assert list(build(2, drop_last=True, sizes=one_of_each)) == []
    # P = 0, 2, 4; L = 1, 3, 5: leftovers [4] + [5] make the full last batch, dropped
    mixed = [(10, 20), (30, 20), (10, 20), (30, 20), (10, 20), (30, 20)]
    assert list(build(4, sizes=mixed)) == [[0, 2, 4, 1], [3, 5]]
    assert list(build(2, drop_last=True, sizes=mixed)) == [[0, 2], [1, 3]]
    # leftovers [7, 8] + [1, 3, 5]: a full mixed batch is kept, the short last one dropped
    assert list(build(4, drop_last=True, sizes=mixed + [(10, 20)] * 3)) == [
        [0, 2, 4, 6], [7, 8, 1, 3]]
