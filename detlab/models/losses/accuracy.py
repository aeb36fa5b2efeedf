"""Top-k classification accuracy, in percent (logged by two-stage box heads)."""
from typing import List, Optional, Tuple, Union

import torch.nn as nn
from torch import Tensor

from detlab.structures.errors import AssertionValueError


def accuracy(pred: Tensor,
             target: Tensor,
             topk: Union[int, Tuple[int, ...]] = 1,
             thresh: Optional[float] = None) -> Union[Tensor, List[Tensor]]:
    """Percentage of rows whose target is among the ``k`` highest scores.

    Args:
        pred (Tensor): (N, C) scores.
        target (Tensor): (N,) class indices.
        topk (int | tuple[int]): One k, or several.
        thresh (float, optional): Scores at or below it never count as hits.

    Returns:
        Tensor | list[Tensor]: (1,) accuracy per k (a 0-d zero per k when
        N = 0); a single tensor when ``topk`` is an int.
    """
    if not isinstance(topk, (int, tuple)):
        raise AssertionValueError(f'accuracy: topk must be an int or a tuple of ints, got {topk!r}')
    return_single = isinstance(topk, int)
    topks = (topk, ) if return_single else topk
    if pred.size(0) == 0:
        zeros = [pred.new_tensor(0.) for _ in topks]
        return zeros[0] if return_single else zeros
    if pred.dim() != 2 or target.dim() != 1 or pred.size(0) != target.size(0):
        raise AssertionValueError(f'accuracy: pred must be (N, C) and target (N,), got '
                                  f'{tuple(pred.shape)} and {tuple(target.shape)}')
    maxk = max(topks)
    if maxk > pred.size(1):
        raise AssertionValueError(f'accuracy: topk {maxk} exceeds the {pred.size(1)} classes of '
                                  'pred')
    top_values, top_labels = pred.topk(maxk, dim=1)
    hits = top_labels.t() == target.view(1, -1)
    if thresh is not None:
        hits = hits & (top_values > thresh).t()
    results = [hits[:k].reshape(-1).float().sum(0, keepdim=True) * (100.0 / pred.size(0))
               for k in topks]
    return results[0] if return_single else results


class Accuracy(nn.Module):
    """``accuracy`` as a module.

    Args:
        topk (tuple[int]): The k values. Defaults to (1,).
        thresh (float, optional): Score threshold of a hit.
    """

    def __init__(self, topk: Tuple[int, ...] = (1, ), thresh: Optional[float] = None) -> None:
        super().__init__()
        self.topk = topk
        self.thresh = thresh

    def forward(self, pred: Tensor, target: Tensor) -> Union[Tensor, List[Tensor]]:
        """Accuracy of ``pred`` (N, C) against ``target`` (N,) for each k."""
        return accuracy(pred, target, self.topk, self.thresh)
