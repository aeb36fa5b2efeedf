"""detlab: config-driven object detection in the MMDetection 3.x style."""
__version__ = '0.1.0'
