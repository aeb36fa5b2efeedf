"""Helpers for numbers that every process must agree on."""
from mmengine.dist import all_reduce
from torch import Tensor


def reduce_mean(tensor: Tensor) -> Tensor:
    """The mean of ``tensor`` over all processes (itself when not distributed).

    Heads normalise their losses by it (e.g. the number of positives), so each
    process divides by the same number, as in MMDetection.

    Args:
        tensor (Tensor): Any shape; not modified.

    Returns:
        Tensor: A new tensor of the same shape.
    """
    mean = tensor.clone()
    all_reduce(mean, op='mean')
    return mean
