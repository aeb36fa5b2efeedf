"""Backbones: image -> multi-scale feature maps."""
from .csp_darknet import CSPDarknet
from .cspnext import CSPNeXt
from .darknet import Darknet
from .mobilenet_v2 import MobileNetV2
from .regnet import RegNet
from .resnet import ResNet, ResNetV1d
from .resnet_blocks import BasicBlock, Bottleneck
from .resnext import ResNeXt
from .ssd_vgg import SSDVGG

__all__ = ['BasicBlock', 'Bottleneck', 'CSPDarknet', 'CSPNeXt', 'Darknet', 'MobileNetV2',
           'RegNet', 'ResNeXt', 'ResNet', 'ResNetV1d', 'SSDVGG']
