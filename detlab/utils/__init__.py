from .atomic import atomic_write, imwrite_atomic
from .config import load_config
from .setup_env import adopt_default_scope, register_all_modules

__all__ = ['register_all_modules', 'adopt_default_scope', 'atomic_write', 'imwrite_atomic',
           'load_config']

from .dist_utils import reduce_mean  # noqa: E402

__all__ += ['reduce_mean']

from .tta import apply_tta  # noqa: E402

__all__ += ['apply_tta']
