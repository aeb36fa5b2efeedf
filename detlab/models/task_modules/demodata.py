"""Random boxes and random-state helpers for tests and debugging (MMDetection's names).

``SamplingResult.random`` and ``AssignResult.random`` build on these, drawing from a
``numpy.random.RandomState`` in MMDetection's order, so a seed gives MMDetection's values.
"""
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

RngType = Union[None, int, np.random.RandomState]


def ensure_rng(rng: RngType = None) -> np.random.RandomState:
    """A RandomState from a seed, an existing state (returned as is) or None (numpy's
    global state)."""
    if rng is None:
        return np.random.mtrand._rand
    if isinstance(rng, int):
        return np.random.RandomState(rng)
    return rng


def random_boxes(num: int = 1, scale: float = 1, rng: RngType = None) -> Tensor:
    """``num`` random (x1, y1, x2, y2) boxes inside [0, scale] x [0, scale].

    Returns:
        Tensor: (num, 4) float32, x1 <= x2 and y1 <= y2.
    """
    corners = ensure_rng(rng).rand(num, 4).astype(np.float32)
    x1, x2 = np.minimum(corners[:, 0], corners[:, 2]), np.maximum(corners[:, 0], corners[:, 2])
    y1, y2 = np.minimum(corners[:, 1], corners[:, 3]), np.maximum(corners[:, 1], corners[:, 3])
    return torch.from_numpy(np.stack([x1, y1, x2, y2], axis=1) * np.float32(scale))


def optional_count(value: Optional[int], rng: np.random.RandomState, high: int) -> int:
    """``value``, or a random count in [0, high) when it is None."""
    return int(rng.randint(0, high)) if value is None else value
