"""Hybrid Task Cascade: Cascade Mask R-CNN with interleaved branches and a semantic branch."""
from detlab.registry import MODELS
from .cascade_rcnn import CascadeRCNN


@MODELS.register_module()
class HybridTaskCascade(CascadeRCNN):
    """HTC (Chen et al., 2019), configured as in MMDetection: a
    :class:`CascadeRCNN` whose ``roi_head`` is a ``HybridTaskCascadeRoIHead``.

    Args: as :class:`TwoStageDetector`.
    """

    @property
    def with_semantic(self) -> bool:
        """Whether the RoI head has a semantic segmentation branch."""
        return self.roi_head.with_semantic
