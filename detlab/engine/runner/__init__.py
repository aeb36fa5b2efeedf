from .det_runner import DetRunner, build_runner

__all__ = ['DetRunner', 'build_runner']
