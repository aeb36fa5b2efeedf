"""Keeping a sample's per-instance entries (boxes, labels, flags, masks) in step."""
import numpy as np

#: Results keys holding one entry per gt instance, indexed together.
INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags', 'gt_masks')


def select_instances(results: dict, keep: np.ndarray) -> None:
    """Keep only the instances where ``keep`` (N,) bool is True, in every instance key."""
    keep = np.asarray(keep, dtype=bool)
    for key in INSTANCE_KEYS:
        if results.get(key) is not None:
            results[key] = results[key][keep]


def record_homography(results: dict, matrix: np.ndarray) -> None:
    """Compose a (3, 3) image-to-image mapping onto ``results['homography_matrix']``.

    The recorded matrix maps original-image pixels to current ones, as
    MMDetection keeps it (each step's matrix multiplies on the left).
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    previous = results.get('homography_matrix')
    results['homography_matrix'] = matrix if previous is None else matrix @ previous
