"""Backbones: image -> multi-scale feature maps."""
from .cspnext import CSPNeXt
from .resnet import ResNet, ResNetV1d
from .resnet_blocks import BasicBlock, Bottleneck

__all__ = ['BasicBlock', 'Bottleneck', 'CSPNeXt', 'ResNet', 'ResNetV1d']
