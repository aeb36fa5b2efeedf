"""Loading a config the way every detlab tool does."""
import os.path as osp
from typing import Optional

from mmengine.config import Config

from .setup_env import adopt_default_scope


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None) -> Config:
    """Read ``path`` with its ``_base_`` chain, apply ``--cfg-options`` and defaults.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Overrides, as parsed by mmengine's ``DictAction``.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        work_dir (str, optional): Overrides the config's ``work_dir``; by default
            ``./work_dirs/<config file name>``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    adopt_default_scope(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
