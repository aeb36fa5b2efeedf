"""ResNeXt backbone: ResNet whose bottlenecks use a grouped 3x3 conv."""
import math
from typing import List, Optional

from torch import nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers import ResLayer
from .resnet import ResNet
from .resnet_blocks import Bottleneck as ResNetBottleneck


class Bottleneck(ResNetBottleneck):
    """ResNeXt's bottleneck: 1x1 -> grouped 3x3 -> 1x1, ``planes * 4`` channels out.

    The inner width is ``floor(planes * base_width / base_channels) * groups``
    (``planes`` itself when ``groups`` is 1), as in MMDetection, so that
    ResNeXt-101 32x4d has 128 inner channels in its first stage.

    Args:
        inplanes (int): Input channels.
        planes (int): Stage width; the block outputs ``planes * 4`` channels.
        groups (int): Groups of the 3x3 conv (the "cardinality"). Defaults to 1.
        base_width (int): Channels per group in the first stage. Defaults to 4.
        base_channels (int): The backbone's ``base_channels``. Defaults to 64.
        **kwargs: The other arguments of ResNet's Bottleneck (stride,
            dilation, downsample, style, with_cp, conv_cfg, norm_cfg, dcn,
            plugins, init_cfg, act_cfg).
    """

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 plugins: Optional[List[dict]] = None,
                 init_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU')) -> None:
        if groups < 1:
            raise AssertionValueError(f'ResNeXt Bottleneck: groups must be >= 1, got {groups}')
        width = planes if groups == 1 else math.floor(planes * base_width / base_channels) * groups
        self._build(inplanes, planes, width, groups, stride, dilation, downsample, style,
                    with_cp, conv_cfg, norm_cfg, dcn, plugins, init_cfg, act_cfg)


@MODELS.register_module()
class ResNeXt(ResNet):
    """ResNeXt (Xie et al., 2017) with MMDetection's config and state_dict keys.

    Args:
        groups (int): Groups of every 3x3 conv, e.g. 32 for ``x101-32x4d``.
            Defaults to 1.
        base_width (int): Channels per group in the first stage, e.g. 4 for
            ``x101-32x4d``. Defaults to 4.
        **kwargs: :class:`ResNet`'s arguments; ``depth`` is 50, 101 or 152.

    Example:
        >>> model = ResNeXt(depth=50, groups=32, base_width=4).eval()
        >>> model.layer1[0].conv2.weight.shape
        torch.Size([128, 4, 3, 3])
    """

    arch_settings = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, groups: int = 1, base_width: int = 4, **kwargs) -> None:
        self.groups = groups
        self.base_width = base_width
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        """One stage of ResNeXt bottlenecks."""
        return ResLayer(groups=self.groups, base_width=self.base_width,
                        base_channels=self.base_channels, **kwargs)
