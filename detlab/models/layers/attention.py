"""Channel and spatial attention plug-ins for residual blocks: SE and CBAM.

Both keep the shape of their input, (B, C, H, W), and rescale it: SE per
channel, CBAM per channel and then per position. They are ResNet
``plugins`` (``in_channels`` is given by the block).
"""
from typing import Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError

#: Kernel size of CBAM's spatial attention conv, from the paper.
CBAM_SPATIAL_KERNEL = 7


def _reduced_channels(owner: str, in_channels: int, ratio: int) -> int:
    """Width of the bottleneck: ``in_channels // ratio``, at least 1."""
    if ratio < 1:
        raise AssertionValueError(f'{owner}: ratio must be >= 1, got {ratio}')
    return max(1, in_channels // ratio)


def spatial_mean(x: Tensor) -> Tensor:
    """Mean of (B, C, H, W) ``x`` over H and W, kept as (B, C, 1, 1).

    On the CPU in fp32/fp64 it is computed as ``sum / (H * W)``, which is bit for bit what
    PyTorch's CPU ``mean`` (and ``adaptive_avg_pool2d(x, 1)``) returns, since that is how they
    compute it there. The backward differs in cost only: the gradient of ``sum`` is a broadcast
    view of the (B, C, 1, 1) gradient divided by ``H * W``, where ``mean``'s materialises a full
    (B, C, H, W) tensor in the default memory format, which for a channels_last ``x`` then adds
    to the other gradient of ``x`` across two layouts. Elsewhere (CUDA, half precision, where
    ``mean`` accumulates before rounding) it is ``mean``.
    """
    if x.device.type == 'cpu' and x.dtype in (torch.float32, torch.float64):
        return x.sum(dim=(2, 3), keepdim=True) / (x.shape[2] * x.shape[3])
    return x.mean(dim=(2, 3), keepdim=True)


def _two_act_cfgs(owner: str, act_cfg: Union[dict, Sequence[dict]]) -> Sequence[dict]:
    if isinstance(act_cfg, dict):
        return act_cfg, act_cfg
    if len(act_cfg) != 2 or not all(isinstance(cfg, dict) for cfg in act_cfg):
        raise AssertionValueError(f'{owner}: act_cfg must be a dict or two dicts (hidden, gate), '
                                  f'got {act_cfg!r}')
    return act_cfg


@MODELS.register_module()
class SEBlock(BaseModule):
    """Squeeze-and-excitation (https://arxiv.org/abs/1709.01507).

    ``x * gate(conv2(act(conv1(avgpool(x)))))``: a 1x1-conv bottleneck of
    ``in_channels // ratio`` channels over the global average of each
    channel gives one weight per channel (at least one hidden channel).

    Args:
        in_channels (int): Channels of the input (and output).
        ratio (int): Channel reduction of the bottleneck. Defaults to 16.
        conv_cfg (dict, optional): mmcv conv config. Defaults to None.
        act_cfg (dict | Sequence[dict]): Activation of the bottleneck and the
            gate. Defaults to ``(dict(type='ReLU'), dict(type='Sigmoid'))``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 ratio: int = 16,
                 conv_cfg: Optional[dict] = None,
                 act_cfg: Union[dict, Sequence[dict]] = (dict(type='ReLU'),
                                                         dict(type='Sigmoid')),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden = _reduced_channels('SEBlock', in_channels, ratio)
        hidden_act, gate_act = _two_act_cfgs('SEBlock', act_cfg)
        self.conv1 = ConvModule(in_channels, hidden, 1, conv_cfg=conv_cfg, act_cfg=hidden_act)
        self.conv2 = ConvModule(hidden, in_channels, 1, conv_cfg=conv_cfg, act_cfg=gate_act)

    def forward(self, x: Tensor) -> Tensor:
        """Rescale each channel of (B, C, H, W) ``x``; same shape out."""
        squeezed = spatial_mean(x)
        return x * self.conv2(self.conv1(squeezed))


class CBAMChannelAttention(BaseModule):
    """CBAM's channel gate: ``sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``, (B, C, 1, 1).

    Args:
        in_channels (int): Channels of the input.
        ratio (int): Channel reduction of the shared MLP.
        act_cfg (dict): Activation of the MLP's hidden layer.
    """

    def __init__(self, in_channels: int, ratio: int, act_cfg: dict) -> None:
        super().__init__()
        hidden = _reduced_channels('CBAM', in_channels, ratio)
        self.fc1 = ConvModule(in_channels, hidden, 1, act_cfg=act_cfg)
        self.fc2 = ConvModule(hidden, in_channels, 1, act_cfg=None)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 1, 1) channel weights in (0, 1)."""
        avg = self.fc2(self.fc1(spatial_mean(x)))
        peak = self.fc2(self.fc1(x.amax(dim=(2, 3), keepdim=True)))
        return torch.sigmoid(avg + peak)


class CBAMSpatialAttention(BaseModule):
    """CBAM's spatial gate: ``sigmoid(conv([mean_c(x), max_c(x)]))``, (B, 1, H, W).

    Args:
        kernel_size (int): Size of the odd square conv. Defaults to 7.
    """

    def __init__(self, kernel_size: int = CBAM_SPATIAL_KERNEL) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise AssertionValueError(f'CBAM: spatial_kernel must be odd, got {kernel_size}')
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W) position weights in (0, 1)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


@MODELS.register_module()
class CBAM(BaseModule):
    """Convolutional block attention module (https://arxiv.org/abs/1807.06521).

    Channel attention first, then spatial attention on the re-weighted map:
    ``y = x * Mc(x)``, ``out = y * Ms(y)``.

    Args:
        in_channels (int): Channels of the input (and output).
        ratio (int): Channel reduction of the shared MLP. Defaults to 16.
        spatial_kernel (int): Kernel size of the spatial conv. Defaults to 7.
        act_cfg (dict): Activation of the MLP's hidden layer.
            Defaults to ``dict(type='ReLU')``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 ratio: int = 16,
                 spatial_kernel: int = CBAM_SPATIAL_KERNEL,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.channel_attention = CBAMChannelAttention(in_channels, ratio, act_cfg)
        self.spatial_attention = CBAMSpatialAttention(spatial_kernel)

    def forward(self, x: Tensor) -> Tensor:
        """Rescale (B, C, H, W) ``x`` per channel, then per position; same shape out."""
        x = x * self.channel_attention(x)
        return x * self.spatial_attention(x)


class ChannelAttention(BaseModule):
    """CSPNeXt's channel attention: ``x * hardsigmoid(fc(avgpool(x)))`` with one
    1x1 conv ``fc`` (``channels`` -> ``channels``, with bias), as MMDetection's. The global
    average pool is :func:`spatial_mean` (MMDetection's ``AdaptiveAvgPool2d(1)``, same
    numbers; no parameters, so the state_dict keys are MMDetection's).

    Args:
        channels (int): Input and output channels.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, channels: int, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = spatial_mean(x)
        return x * self.act(self.fc(out))
