"""DetCheckpointHook: mmengine's CheckpointHook, writing every file atomically."""
import hashlib
import io
import os.path as osp
import pickle

import torch
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from detlab.registry import HOOKS
from detlab.utils.checkpoint import load_checkpoint_file
from ..checkpoint import atomic_backend_args, is_local_path


@HOOKS.register_module()
class DetCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose files are all-or-nothing.

    With a local ``out_dir`` and no ``backend_args``, the checkpoints and the
    published checkpoint (``published_keys``) are written through a renamed
    temporary file (:class:`~detlab.engine.checkpoint.AtomicLocalBackend`): a
    run killed mid-save leaves the previous files as they were. The published
    file is named as mmengine names it (``<checkpoint>-<sha256[:8]>.pth``) and
    read back with detlab's safe loader. (mmengine writes the small
    ``last_checkpoint`` pointer itself; DetRunner names a broken one.)
    """

    def __init__(self, *args, out_dir=None, file_client_args=None, backend_args=None,
                 **kwargs) -> None:
        if backend_args is None and file_client_args is None and is_local_path(out_dir):
            backend_args = atomic_backend_args()
        super().__init__(*args, out_dir=out_dir, file_client_args=file_client_args,
                         backend_args=backend_args, **kwargs)

    def _publish_model(self, runner, ckpt_path: str) -> None:
        """Save ``ckpt_path`` with only the ``published_keys``, beside it."""
        checkpoint = load_checkpoint_file(ckpt_path, map_location='cpu')
        removed = [key for key in checkpoint if key not in self.published_keys]
        published = {key: value for key, value in checkpoint.items()
                     if key in self.published_keys}
        if removed:
            print_log(f'Keys {removed} are left out of the published checkpoint (they are not '
                      f'in published_keys {self.published_keys}).', logger='current')
        sha = hashlib.sha256(pickle.dumps(published)).hexdigest()
        final_path = osp.splitext(ckpt_path)[0] + f'-{sha[:8]}.pth'
        with io.BytesIO() as buffer:
            torch.save(published, buffer)
            self.file_backend.put(buffer.getvalue(), final_path)
        print_log(f'The checkpoint ({ckpt_path}) is published to {final_path}.',
                  logger='current')
