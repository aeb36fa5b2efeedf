"""HTCMaskHead: an FCNMaskHead that also takes the previous stage's mask features."""
from typing import List, Optional, Union

from mmcv.cnn import ConvModule
from torch import Tensor

from detlab.registry import MODELS
from .fcn_mask_head import FCNMaskHead


@MODELS.register_module()
class HTCMaskHead(FCNMaskHead):
    """The mask head of Hybrid Task Cascade's stages (Chen et al., 2019).

    With the mask information flow, a stage's RoI features are summed with
    ``conv_res`` (a 1x1 ConvModule) of the previous stage's mask features
    (the output of its ``convs``, before upsampling) before this head's
    ``convs``. State_dict keys as MMDetection's: those of
    :class:`FCNMaskHead` plus ``conv_res.conv``.

    Args:
        with_conv_res (bool): Build ``conv_res`` to take the previous
            stage's features (the first stage has none, so HTC's first
            head sets it False).
        **kwargs: As :class:`FCNMaskHead`.
    """

    def __init__(self, with_conv_res: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.with_conv_res = with_conv_res
        if with_conv_res:
            self.conv_res = ConvModule(self.conv_out_channels, self.conv_out_channels, 1,
                                       conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)

    def forward(self, x: Tensor, res_feat: Optional[Tensor] = None, return_logits: bool = True,
                return_feat: bool = True) -> Union[Tensor, List[Tensor]]:
        """Mask logits and/or this stage's mask features, as MMDetection's.

        Args:
            x (Tensor): (K, in_channels, h, w) RoI features.
            res_feat (Tensor, optional): (K, conv_out_channels, h, w) mask
                features of the previous stage.
            return_logits (bool): Return (K, C, 2h, 2w) logits.
            return_feat (bool): Return the (K, conv_out_channels, h, w)
                features for the next stage.

        Returns:
            Tensor | list[Tensor]: ``logits``, ``feats`` or ``[logits, feats]``.
        """
        if not (return_logits or return_feat):
            raise ValueError('HTCMaskHead.forward: return_logits and return_feat are both '
                             'False; ask for at least one.')
        if res_feat is not None:
            if not self.with_conv_res:
                raise ValueError('HTCMaskHead got the previous stage\'s mask features but '
                                 'has with_conv_res=False; set with_conv_res=True on every '
                                 'stage after the first when mask_info_flow is on.')
            x = x + self.conv_res(res_feat)
        for conv in self.convs:
            x = conv(x)
        outs = []
        if return_logits:
            outs.append(self.logits_from_conv_feats(x))
        if return_feat:
            outs.append(x)
        return outs if len(outs) > 1 else outs[0]
