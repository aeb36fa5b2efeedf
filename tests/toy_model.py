"""A two-input linear model for tests that need a real mmengine Runner, fast."""
import torch
from mmengine.model import BaseModel


class TinyModel(BaseModel):
    """``inputs`` (list of (2,) tensors) -> (B, 1); ``loss`` is the mean output."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, mode='tensor'):
        outputs = self.linear(torch.stack(inputs))
        return dict(loss=outputs.mean()) if mode == 'loss' else outputs
