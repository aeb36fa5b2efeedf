"""Using a trained detector from Python: ``init_detector``, ``inference_detector``
and ``DetInferencer`` (MMDetection 3.x's ``mmdet.apis``)."""
from .det_inferencer import DetInferencer
from .inference import inference_detector, init_detector, list_models
from .model_zoo import MODEL_ZOO_WEIGHTS, model_zoo_cache_path, model_zoo_weights

__all__ = ['DetInferencer', 'init_detector', 'inference_detector', 'list_models',
           'MODEL_ZOO_WEIGHTS', 'model_zoo_weights', 'model_zoo_cache_path']
