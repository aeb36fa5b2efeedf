"""Import MMDetection 3.3 from its wheel next to detlab, for measuring reference numbers.

MMDetection 3.3 asserts ``mmcv < 2.2.0`` and its ops need mmcv's compiled extension,
which ``mmcv-lite`` does not have. This module makes ``import mmdet`` work in detlab's
environment without changing either package on disk:

* ``mmcv._ext`` is a stand-in whose every kernel raises ``NotImplementedError`` naming
  itself, so ``mmcv.ops`` imports and any op not replaced below fails loudly;
* the ops detection models call are replaced by torchvision's (``nms``, ``roi_align``,
  ``deform_conv2d``) or by mmcv's own PyTorch formulations (multi-scale deformable
  attention on the CPU);
* ``mmcv.__version__`` reads ``2.1.0`` while mmdet is imported.

Usage (not run by CI)::

    pip download --no-deps -d /tmp/wheels mmdet==3.3.0
    pip install shapely tqdm terminaltables      # mmdet's own imports need them
    MMDET_WHEEL=/tmp/wheels/mmdet-3.3.0-py3-none-any.whl python tools/dev/SCRIPT.py

and in the script::

    from mmdet_reference import import_mmdet
    mmdet = import_mmdet()          # then mmdet.registry.MODELS.build(...) as usual

A wheel is a zip file of pure Python, so it is imported straight from the file.
"""
import glob
import os
import sys
import types


def _missing_kernel(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def kernel(*args, **kwargs):
        raise NotImplementedError(f'mmcv kernel {name!r} has no stand-in in mmdet_reference.py')
    return kernel


def _install_ext_stand_in():
    ext = types.ModuleType('mmcv._ext')
    ext.__getattr__ = _missing_kernel  # every attribute is a kernel that raises
    sys.modules['mmcv._ext'] = ext


def _torchvision_ops():
    """Replace the mmcv ops that detectors call with torchvision's equivalents."""
    import torch
    import torchvision.ops as tv_ops
    import importlib
    ops = importlib.import_module('mmcv.ops')
    deform_conv = importlib.import_module('mmcv.ops.deform_conv')
    modulated_deform_conv = importlib.import_module('mmcv.ops.modulated_deform_conv')
    nms_module = importlib.import_module('mmcv.ops.nms')
    roi_align = importlib.import_module('mmcv.ops.roi_align')

    def nms(boxes, scores, iou_threshold, offset=0, score_threshold=0, max_num=-1):
        assert offset == 0, 'stand-in nms supports offset=0 only'
        is_numpy = not isinstance(boxes, torch.Tensor)
        boxes_t = torch.as_tensor(boxes)
        scores_t = torch.as_tensor(scores)
        if score_threshold > 0:
            valid = scores_t > score_threshold
            boxes_t, scores_t = boxes_t[valid], scores_t[valid]
            valid_inds = torch.nonzero(valid, as_tuple=False).squeeze(1)
        inds = tv_ops.nms(boxes_t.float(), scores_t.float(), float(iou_threshold))
        if max_num > 0:
            inds = inds[:max_num]
        if score_threshold > 0:
            inds = valid_inds[inds]
        dets = torch.cat((torch.as_tensor(boxes)[inds], torch.as_tensor(scores)[inds].reshape(-1, 1)), 1)
        if is_numpy:
            return dets.cpu().numpy(), inds.cpu().numpy()
        return dets, inds

    nms_module.nms = ops.nms = nms

    def roi_align_fn(input, rois, output_size, spatial_scale=1.0, sampling_ratio=0,
                     pool_mode='avg', aligned=True):
        assert pool_mode == 'avg', 'stand-in roi_align supports pool_mode=avg only'
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        return tv_ops.roi_align(input, rois, tuple(output_size), spatial_scale, sampling_ratio,
                                aligned)

    roi_align.roi_align = ops.roi_align = roi_align_fn

    def roi_align_forward(self, input, rois):
        return roi_align_fn(input, rois, self.output_size, self.spatial_scale,
                            self.sampling_ratio, self.pool_mode, self.aligned)

    roi_align.RoIAlign.forward = roi_align_forward

    def deform_forward(self, x, offset):
        return tv_ops.deform_conv2d(x, offset, self.weight, None, self.stride, self.padding,
                                    self.dilation)

    def modulated_forward(self, x, offset, mask):
        return tv_ops.deform_conv2d(x, offset, self.weight, self.bias, self.stride,
                                    self.padding, self.dilation, mask)

    deform_conv.DeformConv2d.forward = deform_forward
    modulated_deform_conv.ModulatedDeformConv2d.forward = modulated_forward

    def dcn_pack_forward(self, x):
        offset = self.conv_offset(x)
        return deform_forward(self, x, offset)

    def mdcn_pack_forward(self, x):
        out = self.conv_offset(x)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return modulated_forward(self, x, offset, torch.sigmoid(mask))

    deform_conv.DeformConv2dPack.forward = dcn_pack_forward
    modulated_deform_conv.ModulatedDeformConv2dPack.forward = mdcn_pack_forward


def find_wheel() -> str:
    wheel = os.environ.get('MMDET_WHEEL')
    if wheel:
        return wheel
    found = sorted(glob.glob('/tmp/wheels/mmdet-3.3.0-*.whl'))
    if not found:
        raise SystemExit('set MMDET_WHEEL to mmdet-3.3.0-py3-none-any.whl '
                         '(pip download --no-deps -d /tmp/wheels mmdet==3.3.0)')
    return found[0]


def import_mmdet():
    """Import mmdet 3.3 from its wheel with the stand-ins above; returns the module."""
    if 'mmdet' in sys.modules:
        return sys.modules['mmdet']
    import mmcv
    _install_ext_stand_in()
    _torchvision_ops()
    # mmcv's transformer module binds MultiScaleDeformableAttention only if mmcv.ops
    # imported when it was first loaded; after detlab imported it, bind it now.
    transformer = sys.modules.get('mmcv.cnn.bricks.transformer')
    if transformer is not None and not hasattr(transformer, 'MultiScaleDeformableAttention'):
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttention
        transformer.MultiScaleDeformableAttention = MultiScaleDeformableAttention
    sys.path.insert(0, find_wheel())
    real_version = mmcv.__version__
    mmcv.__version__ = '2.1.0'
    try:
        import mmdet
        import mmdet.models  # noqa: F401  (registers every model)
    finally:
        mmcv.__version__ = real_version
    return mmdet
