"""Backbones: image -> multi-scale feature maps."""
from .resnet import ResNet, ResNetV1d
from .resnet_blocks import BasicBlock, Bottleneck

__all__ = ['BasicBlock', 'Bottleneck', 'ResNet', 'ResNetV1d']
