from .amp_optim_wrapper import AMP_MODES, AmpOptimWrapper

__all__ = ['AMP_MODES', 'AmpOptimWrapper']
