"""Necks: multi-scale backbone features -> the feature pyramid the heads read."""
from .channel_mapper import ChannelMapper
from .cspnext_pafpn import CSPNeXtPAFPN
from .fpn import FPN

__all__ = ['ChannelMapper', 'CSPNeXtPAFPN', 'FPN']
