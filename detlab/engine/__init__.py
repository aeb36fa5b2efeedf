"""Runner parts beyond mmengine; importing this applies detlab's mmengine fixes."""
from . import hooks
from .mmengine_fixes import apply_mmengine_fixes

apply_mmengine_fixes()

__all__ = ['hooks', 'apply_mmengine_fixes']
