"""Keeping runs that share a work dir apart.

Two runs started in the same second in one work dir would share mmengine's
timestamp folder (and truncate each other's log); two training runs there
would also overwrite each other's ``epoch_N.pth``/``iter_N.pth`` and
``last_checkpoint``. Every run gets a folder of its own
(:func:`claim_run_folder`), and a training run holds an exclusive lock on the
work dir (:class:`WorkDirLock`); a second training run fails at once with an
error that names the first. Evaluation runs take no lock, so a checkpoint can
be tested while its training goes on.
"""
import fcntl
import os
import os.path as osp
import sys
from typing import Optional

#: File in the work dir that a training run holds locked (fcntl) while it trains.
LOCK_FILE = '.train.lock'


def claim_run_folder(work_dir: str, timestamp: str) -> str:
    """Create ``work_dir/timestamp`` (or ``timestamp_2``, ``_3``, ... when
    another run made it first) and return the folder's name.

    ``os.mkdir`` fails on an existing folder, so two runs never get the same one.
    """
    os.makedirs(work_dir, exist_ok=True)
    name, number = timestamp, 1
    while True:
        try:
            os.mkdir(osp.join(work_dir, name))
            return name
        except FileExistsError:
            number += 1
            name = f'{timestamp}_{number}'


class WorkDirLock:
    """An exclusive lock on ``work_dir`` for one training run.

    The lock is an ``fcntl.flock`` on ``work_dir/.train.lock``; the kernel
    drops it when the process ends, however it ends, so a killed run never
    leaves a stale lock. The holder writes its pid and command line into the
    file so that the refused run can name it.
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_FILE)
        self._file = None

    def acquire(self) -> Optional[str]:
        """Take the lock; None on success, else the message saying who holds it."""
        os.makedirs(self.work_dir, exist_ok=True)
        lock_file = open(self.path, 'a+')
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or 'a process that has not written its pid yet'
            lock_file.close()
            return (f'Another training run is using the work dir {self.work_dir} ({holder}); '
                    'two runs there would overwrite each other\'s checkpoints and '
                    'last_checkpoint. Wait for it to finish, or give this run another '
                    f'--work-dir. (The lock is {self.path}; it is released when that process '
                    'ends.)')
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f'pid {os.getpid()}: {" ".join(sys.argv)}\n')
        lock_file.flush()
        self._file = lock_file
        return None

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
