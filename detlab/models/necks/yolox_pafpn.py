"""YOLOXPAFPN, YOLOX's neck (Ge et al., "YOLOX: Exceeding YOLO Series in
2021"): the path aggregation network of :class:`CSPNeXtPAFPN` with Darknet
bottlenecks in its CSP layers and 1x1 output convs, with MMDetection's config
keys and state_dict keys."""
import math
from typing import Optional, Sequence

from detlab.registry import MODELS
from ..layers.csp_layer import CSP_NORM_CFG
from .cspnext_pafpn import CSPNeXtPAFPN


@MODELS.register_module()
class YOLOXPAFPN(CSPNeXtPAFPN):
    """Path aggregation with Darknet-bottleneck CSP layers.

    Args:
        in_channels (Sequence[int]): Channels of each input level (fine to coarse).
        out_channels (int): Channels of every output level.
        num_csp_blocks (int): Blocks per CSP layer.
        use_depthwise (bool): Depthwise-separable downsampling convs and blocks.
        upsample_cfg (dict): ``nn.Upsample`` arguments.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict): Kaiming-uniform convs, as MMDetection.
    """

    use_cspnext_block = False
    out_kernel_size = 1

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_csp_blocks: int = 3,
                 use_depthwise: bool = False,
                 upsample_cfg: dict = dict(scale_factor=2, mode='nearest'),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'),
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(in_channels, out_channels, num_csp_blocks=num_csp_blocks,
                         use_depthwise=use_depthwise, upsample_cfg=upsample_cfg,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         init_cfg=init_cfg)
