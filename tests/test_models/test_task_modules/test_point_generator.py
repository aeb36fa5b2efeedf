import pytest
import torch

from detlab.models.task_modules import MlvlPointGenerator
from detlab.registry import TASK_UTILS


def test_points_sit_at_cell_centres_row_by_row():
    gen = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=[8, (16, 32)]))
    assert isinstance(gen, MlvlPointGenerator)
    assert gen.num_levels == 2 and gen.num_base_priors == [1, 1]
    level0, level1 = gen.grid_priors([(2, 3), (1, 2)])
    assert level0.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    # (w, h) stride (16, 32): x steps by 16, y by 32.
    assert level1.tolist() == [[8, 16], [24, 16]]
    assert level0.dtype == torch.float32


def test_offset_and_with_stride():
    gen = MlvlPointGenerator([4], offset=0.)
    points = gen.grid_priors([(1, 2)], with_stride=True)[0]
    assert points.tolist() == [[0, 0, 4, 4], [4, 0, 4, 4]]
    assert gen.grid_priors([(1, 1)], dtype=torch.float64)[0].dtype == torch.float64


def test_sparse_priors_pick_the_same_points_as_the_grid():
    gen = MlvlPointGenerator([8, 16])
    grid = gen.grid_priors([(5, 7), (3, 4)])[1]
    idx = torch.tensor([0, 3, 5, 11])
    assert torch.equal(gen.sparse_priors(idx, (3, 4), level_idx=1), grid[idx])


def test_valid_flags_cover_the_padded_image_only():
    gen = MlvlPointGenerator([8, 16])
    # A 20 x 30 image on 4 x 5 / 2 x 3 maps: ceil(20/8)=3 rows and ceil(30/8)=4 columns
    # valid on level 0, ceil(20/16)=2 rows and ceil(30/16)=2 columns on level 1.
    flags0, flags1 = gen.valid_flags([(4, 5), (2, 3)], (20, 30, 3))
    expected0 = torch.zeros(4, 5, dtype=torch.bool)
    expected0[:3, :4] = True
    assert torch.equal(flags0, expected0.reshape(-1))
    assert flags1.tolist() == [True, True, False, True, True, False]
    with pytest.raises(ValueError, match='valid_size'):
        gen.single_level_valid_flags((2, 2), (3, 2))


def test_level_count_mismatch_is_refused():
    with pytest.raises(ValueError, match='2 levels'):
        MlvlPointGenerator([8, 16]).grid_priors([(2, 2)])
