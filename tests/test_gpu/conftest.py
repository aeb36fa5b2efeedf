"""Fixtures of the CUDA tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _no_tf32():
    """Full fp32 on the GPU, so CPU and GPU (or two formulations on the GPU) differ only by
    summation order."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
