"""Feature Pyramid Network with MMDetection 3.x's config keys and state_dict keys."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionTypeError, AssertionValueError

#: ``end_level=-1``: use the backbone levels up to the last one.
LAST_LEVEL = -1
#: Where the extra (stride-2 conv) levels above the backbone's take their input.
EXTRA_CONV_SOURCES = ('on_input', 'on_lateral', 'on_output')
EXTRA_CONV_STRIDE = 2
#: Without extra convs, extra levels subsample the top output (kernel 1, stride 2).
EXTRA_POOL_KERNEL, EXTRA_POOL_STRIDE = 1, 2


@MODELS.register_module()
class FPN(BaseModule):
    """Feature Pyramid Network (Lin et al., 2017).

    Each used backbone level gets a 1x1 lateral conv to ``out_channels``; the
    top-down pathway adds each level's upsampled coarser lateral, then a 3x3
    conv smooths it. Levels above the backbone's come from stride-2 3x3 convs
    (``add_extra_convs``) or from max-pooling the top output. Modules are
    ``lateral_convs.{i}.conv`` and ``fpn_convs.{i}.conv`` (extra convs are
    appended to ``fpn_convs``), as in MMDetection.

    Args:
        in_channels (list[int]): Channels of every backbone level given to
            ``forward``.
        out_channels (int): Channels of every output level.
        num_outs (int): Number of output levels.
        start_level (int): First backbone level used. Defaults to 0.
        end_level (int): Last backbone level used (inclusive); -1 means the
            last one. With an explicit end_level, ``num_outs`` must equal
            ``end_level - start_level + 1``. Defaults to -1.
        add_extra_convs (bool | str): False: extra levels by max pooling.
            True or 'on_input': stride-2 convs, the first one on the last used
            backbone feature; 'on_lateral': on its lateral; 'on_output': on
            the top FPN output. Defaults to False.
        relu_before_extra_convs (bool): ReLU before the 2nd and later extra
            convs. Defaults to False.
        no_norm_on_lateral (bool): No norm in the lateral convs. Defaults to False.
        conv_cfg (dict, optional): mmcv conv config. Defaults to None.
        norm_cfg (dict, optional): mmcv norm config. Defaults to None.
        act_cfg (dict, optional): mmcv activation config. Defaults to None.
        upsample_cfg (dict): ``F.interpolate`` kwargs for the top-down path;
            without ``scale_factor`` the size of the finer level is used.
            Defaults to ``dict(mode='nearest')``.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to uniform Xavier on every Conv2d.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = LAST_LEVEL,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Union[dict, list, None] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, Sequence) or isinstance(in_channels, str) or \
                not in_channels:
            raise AssertionTypeError(f'FPN: in_channels must be a non-empty list of ints, got '
                                     f'{in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)
        self.start_level = start_level
        self.end_level = end_level
        self.backbone_end_level = self._check_levels(start_level, end_level, num_outs)
        self.add_extra_convs = self._check_extra_convs(add_extra_convs)

        conv_kwargs = dict(conv_cfg=conv_cfg, act_cfg=act_cfg, inplace=False)
        lateral_norm_cfg = None if no_norm_on_lateral else norm_cfg
        self.lateral_convs = nn.ModuleList(
            ConvModule(self.in_channels[i], out_channels, 1, norm_cfg=lateral_norm_cfg,
                       **conv_kwargs)
            for i in range(start_level, self.backbone_end_level))
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                       **conv_kwargs)
            for _ in range(start_level, self.backbone_end_level))
        if self.add_extra_convs:
            for i in range(self.num_extra_levels):
                cin = out_channels
                if i == 0 and self.add_extra_convs == 'on_input':
                    cin = self.in_channels[self.backbone_end_level - 1]
                self.fpn_convs.append(
                    ConvModule(cin, out_channels, 3, stride=EXTRA_CONV_STRIDE, padding=1,
                               norm_cfg=norm_cfg, **conv_kwargs))

    @property
    def num_extra_levels(self) -> int:
        """Output levels above the last used backbone level."""
        return self.num_outs - (self.backbone_end_level - self.start_level)

    def _check_levels(self, start_level: int, end_level: int, num_outs: int) -> int:
        """Validate the level range; return the exclusive end backbone level."""
        if not 0 <= start_level < self.num_ins:
            raise AssertionValueError(f'FPN: start_level={start_level} must index in_channels '
                                      f'(0..{self.num_ins - 1})')
        if end_level in (LAST_LEVEL, self.num_ins - 1):
            if num_outs < self.num_ins - start_level:
                raise AssertionValueError(f'FPN: num_outs={num_outs} is fewer than the '
                                          f'{self.num_ins - start_level} backbone levels used '
                                          f'(from start_level={start_level}); raise num_outs or '
                                          'start_level')
            return self.num_ins
        if not start_level <= end_level < self.num_ins:
            raise AssertionValueError(f'FPN: end_level={end_level} must be -1 or in '
                                      f'{start_level}..{self.num_ins - 1}')
        if num_outs != end_level - start_level + 1:
            raise AssertionValueError(f'FPN: with end_level={end_level}, num_outs must be '
                                      'end_level - start_level + 1 = '
                                      f'{end_level - start_level + 1}, got {num_outs}')
        return end_level + 1

    @staticmethod
    def _check_extra_convs(add_extra_convs: Union[bool, str]) -> Union[bool, str]:
        if add_extra_convs is True:
            return 'on_input'
        if add_extra_convs is False or add_extra_convs in EXTRA_CONV_SOURCES:
            return add_extra_convs
        raise AssertionValueError('FPN: add_extra_convs must be a bool or one of '
                                  f'{EXTRA_CONV_SOURCES}, got {add_extra_convs!r}')

    def _upsample_to(self, coarse: Tensor, fine: Tensor) -> Tensor:
        if 'scale_factor' in self.upsample_cfg:
            return F.interpolate(coarse, **self.upsample_cfg)
        return F.interpolate(coarse, size=fine.shape[2:], **self.upsample_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Build the pyramid.

        Args:
            inputs (Sequence[Tensor]): One (B, in_channels[i], H_i, W_i) map per
                backbone level, finest first.

        Returns:
            tuple[Tensor]: ``num_outs`` maps of shape (B, out_channels, H_j,
            W_j): the used backbone levels' sizes, then each extra level at
            half the size of the one below (rounded up).
        """
        if len(inputs) != self.num_ins:
            raise AssertionValueError(f'FPN: got {len(inputs)} feature maps, but in_channels '
                                      f'{self.in_channels} describes {self.num_ins}')
        laterals = [
            lateral_conv(inputs[self.start_level + i])
            for i, lateral_conv in enumerate(self.lateral_convs)
        ]
        # Top-down: each level receives the already-merged coarser one.
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + self._upsample_to(laterals[i], laterals[i - 1])
        outs = [fpn_conv(lateral) for fpn_conv, lateral in zip(self.fpn_convs, laterals)]
        if self.num_extra_levels <= 0:
            return tuple(outs)
        if not self.add_extra_convs:
            for _ in range(self.num_extra_levels):
                outs.append(F.max_pool2d(outs[-1], EXTRA_POOL_KERNEL, stride=EXTRA_POOL_STRIDE))
            return tuple(outs)
        source = {
            'on_input': inputs[self.backbone_end_level - 1],
            'on_lateral': laterals[-1],
            'on_output': outs[-1],
        }[self.add_extra_convs]
        used = len(laterals)
        outs.append(self.fpn_convs[used](source))
        for extra_conv in self.fpn_convs[used + 1:]:
            top = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
            outs.append(extra_conv(top))
        return tuple(outs)
