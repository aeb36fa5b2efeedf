"""DetCheckpointHook: mmengine's CheckpointHook, writing every file atomically."""
import hashlib
import io
import os.path as osp
import pickle

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from detlab.registry import HOOKS
from detlab.utils.checkpoint import load_checkpoint_file
from ..checkpoint import atomic_backend_args, is_local_path, write_last_checkpoint


@HOOKS.register_module()
class DetCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose files are all-or-nothing.

    With a local ``out_dir`` and no ``backend_args``, the checkpoints and the
    published checkpoint (``published_keys``) are written through a renamed
    temporary file (:class:`~detlab.engine.checkpoint.AtomicLocalBackend`): a
    run killed mid-save leaves the previous files as they were. The published
    file is named as mmengine names it (``<checkpoint>-<sha256[:8]>.pth``) and
    read back with detlab's safe loader. The ``last_checkpoint`` pointer in
    the work dir is written through a renamed temporary file too
    (:func:`~detlab.engine.checkpoint.write_last_checkpoint`), so a run
    stopped while writing it leaves the previous pointer whole.
    """

    def __init__(self, *args, out_dir=None, file_client_args=None, backend_args=None,
                 **kwargs) -> None:
        if backend_args is None and file_client_args is None and is_local_path(out_dir):
            backend_args = atomic_backend_args()
        super().__init__(*args, out_dir=out_dir, file_client_args=file_client_args,
                         backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """mmengine's steps, in mmengine's order: drop the oldest checkpoint
        beyond ``max_keep_ckpts``, save the checkpoint of ``step``, then point
        ``last_checkpoint`` at it (atomically, on the main process).

        Args:
            runner (Runner): The training runner.
            step (int): Epoch or iteration the checkpoint is named after.
            meta (dict): ``epoch`` and ``iter`` saved in the checkpoint.
        """
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            # A step saved twice (the latest and the best checkpoint) is kept once.
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                self._remove_checkpoint(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if is_main_process():
            write_last_checkpoint(runner.work_dir, self.last_ckpt)

    def _remove_checkpoint(self, step: int) -> None:
        """Delete the checkpoint of ``step`` (a file, or a folder as DeepSpeed
        saves), on the main process."""
        if not is_main_process():
            return
        ckpt_path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.file_backend.isfile(ckpt_path):
            self.file_backend.remove(ckpt_path)
        elif self.file_backend.isdir(ckpt_path):
            self.file_backend.rmtree(ckpt_path)

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
