"""Backbones: image -> multi-scale feature maps."""
from .csp_darknet import CSPDarknet
from .cspnext import CSPNeXt
from .darknet import Darknet
from .hrnet import HRNet
from .mobilenet_v2 import MobileNetV2
from .pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
from .regnet import RegNet
from .res2net import Res2Net
from .resnest import ResNeSt
from .resnet import ResNet, ResNetV1d
from .resnet_blocks import BasicBlock, Bottleneck
from .resnext import ResNeXt
from .ssd_vgg import SSDVGG
from .swin import SwinTransformer

__all__ = ['BasicBlock', 'Bottleneck', 'CSPDarknet', 'CSPNeXt', 'Darknet', 'HRNet',
           'MobileNetV2', 'PyramidVisionTransformer', 'PyramidVisionTransformerV2', 'RegNet',
           'Res2Net', 'ResNeSt', 'ResNeXt', 'ResNet', 'ResNetV1d', 'SSDVGG', 'SwinTransformer']
