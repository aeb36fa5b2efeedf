"""``detlab.models`` and its subpackages export MMDetection's public names for what detlab has."""
import importlib
import pkgutil

import pytest

import detlab.models

# ``__all__`` of mmdet/models/{losses,backbones,layers}/__init__.py in MMDetection 3.3.0.
MMDET_ALL = {
    'losses': [
        'accuracy', 'Accuracy', 'cross_entropy', 'binary_cross_entropy', 'mask_cross_entropy',
        'CrossEntropyLoss', 'sigmoid_focal_loss', 'FocalLoss', 'smooth_l1_loss', 'SmoothL1Loss',
        'balanced_l1_loss', 'BalancedL1Loss', 'mse_loss', 'MSELoss', 'iou_loss',
        'bounded_iou_loss', 'IoULoss', 'BoundedIoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss',
        'EIoULoss', 'SIoULoss', 'GHMC', 'GHMR', 'reduce_loss', 'weight_reduce_loss',
        'weighted_loss', 'L1Loss', 'l1_loss', 'isr_p', 'carl_loss', 'AssociativeEmbeddingLoss',
        'GaussianFocalLoss', 'QualityFocalLoss', 'DistributionFocalLoss', 'VarifocalLoss',
        'KnowledgeDistillationKLDivLoss', 'SeesawLoss', 'DiceLoss', 'EQLV2Loss', 'MarginL2Loss',
        'MultiPosCrossEntropyLoss', 'L2Loss', 'TripletLoss', 'DDQAuxLoss',
        'CrossEntropyCustomLoss', 'FocalCustomLoss'
    ],
    'backbones': [
        'RegNet', 'ResNet', 'ResNetV1d', 'ResNeXt', 'SSDVGG', 'HRNet', 'MobileNetV2', 'Res2Net',
        'HourglassNet', 'DetectoRS_ResNet', 'DetectoRS_ResNeXt', 'Darknet', 'ResNeSt',
        'TridentResNet', 'CSPDarknet', 'SwinTransformer', 'PyramidVisionTransformer',
        'PyramidVisionTransformerV2', 'EfficientNet', 'CSPNeXt'
    ],
    'layers': [
        'fast_nms', 'multiclass_nms', 'mask_matrix_nms', 'DropBlock', 'PixelDecoder',
        'TransformerEncoderPixelDecoder', 'MSDeformAttnPixelDecoder', 'ResLayer', 'PatchMerging',
        'SinePositionalEncoding', 'LearnedPositionalEncoding', 'DynamicConv',
        'SimplifiedBasicBlock', 'NormedLinear', 'NormedConv2d', 'InvertedResidual', 'SELayer',
        'ConvUpsample', 'CSPLayer', 'adaptive_avg_pool2d', 'AdaptiveAvgPool2d', 'PatchEmbed',
        'nchw_to_nlc', 'nlc_to_nchw', 'DyReLU', 'ExpMomentumEMA', 'inverse_sigmoid',
        'ChannelAttention', 'SiLU', 'MLP', 'DetrTransformerEncoderLayer',
        'DetrTransformerDecoderLayer', 'DetrTransformerEncoder', 'DetrTransformerDecoder',
        'DeformableDetrTransformerEncoder', 'DeformableDetrTransformerDecoder',
        'DeformableDetrTransformerEncoderLayer', 'DeformableDetrTransformerDecoderLayer',
        'AdaptivePadding', 'coordinate_to_encoding', 'ConditionalAttention',
        'DABDetrTransformerDecoderLayer', 'DABDetrTransformerDecoder',
        'DABDetrTransformerEncoder', 'DDQTransformerDecoder',
        'ConditionalDetrTransformerDecoder', 'ConditionalDetrTransformerDecoderLayer',
        'DinoTransformerDecoder', 'CdnQueryGenerator', 'Mask2FormerTransformerEncoder',
        'Mask2FormerTransformerDecoderLayer', 'Mask2FormerTransformerDecoder',
        'SinePositionalEncoding3D', 'FrozenBatchNorm2d'
    ],
}
#: Names detlab implements today; the exports below must include at least these.
IMPLEMENTED = {
    'losses': {
        'accuracy', 'Accuracy', 'cross_entropy', 'binary_cross_entropy', 'mask_cross_entropy',
        'CrossEntropyLoss', 'sigmoid_focal_loss', 'FocalLoss', 'smooth_l1_loss', 'SmoothL1Loss',
        'mse_loss', 'MSELoss', 'iou_loss', 'IoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss',
        'reduce_loss', 'weight_reduce_loss', 'weighted_loss', 'L1Loss', 'l1_loss',
        'QualityFocalLoss', 'KnowledgeDistillationKLDivLoss'
    },
    'backbones': {'Darknet', 'MobileNetV2', 'RegNet', 'ResNet', 'ResNetV1d', 'ResNeXt', 'SSDVGG'},
    'layers': {'ResLayer', 'multiclass_nms'},
}


def _names_defined_in(package) -> set:
    """Every top-level name defined by a detlab module of ``package``."""
    names = set()
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, '__module__', '').startswith('detlab.'):
                names.add(name)
    return names


@pytest.mark.parametrize('subpackage', sorted(MMDET_ALL))
def test_mmdetection_names_detlab_has_are_exported(subpackage):
    package = getattr(detlab.models, subpackage)
    has = set(MMDET_ALL[subpackage]) & _names_defined_in(package)
    assert IMPLEMENTED[subpackage] <= has
    missing_here = has - set(package.__all__)
    missing_top = has - set(detlab.models.__all__)
    assert not missing_here, f'detlab.models.{subpackage} does not export {sorted(missing_here)}'
    assert not missing_top, f'detlab.models does not export {sorted(missing_top)}'
    for name in has:
        assert getattr(detlab.models, name) is getattr(package, name)


def test_every_subpackage_name_is_exported_from_detlab_models():
    for subpackage in ('backbones', 'dense_heads', 'detectors', 'layers', 'losses', 'necks',
                       'task_modules', 'data_preprocessors'):
        for name in getattr(detlab.models, subpackage).__all__:
            assert name in detlab.models.__all__
            assert hasattr(detlab.models, name)
