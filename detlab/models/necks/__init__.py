"""Necks: multi-scale backbone features -> the feature pyramid the heads read."""
from .channel_mapper import ChannelMapper
from .cspnext_pafpn import CSPNeXtPAFPN
from .fpn import FPN
from .hrfpn import HRFPN
from .ssd_neck import SSDNeck
from .yolo_neck import YOLOV3Neck
from .yolox_pafpn import YOLOXPAFPN

__all__ = ['ChannelMapper', 'CSPNeXtPAFPN', 'FPN', 'HRFPN', 'SSDNeck', 'YOLOV3Neck',
           'YOLOXPAFPN']
