from . import assigners, coders, prior_generators, samplers

__all__ = ['assigners', 'coders', 'prior_generators', 'samplers']
