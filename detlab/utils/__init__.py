from .atomic import atomic_write, imwrite_atomic
from .config import CfgOptionsAction, load_config, merge_cfg_options, read_config
from .dist_utils import reduce_mean
from .setup_env import adopt_default_scope, register_all_modules
from .tta import apply_tta

__all__ = ['register_all_modules', 'adopt_default_scope', 'atomic_write', 'imwrite_atomic',
           'load_config', 'read_config', 'merge_cfg_options', 'CfgOptionsAction', 'reduce_mean',
           'apply_tta']
