"""Failures that should read as what they are, not as a hang or a socket error."""
import contextlib
from typing import Iterator

#: What the main process sees when a DataLoader worker dies mid-batch: the
#: pipe to it breaks before PyTorch's own "worker ... killed" check runs.
WORKER_PIPE_ERRORS = (ConnectionResetError, EOFError, BrokenPipeError)


@contextlib.contextmanager
def reported_worker_failures() -> Iterator[None]:
    """Turn a broken pipe to a dead DataLoader worker into a clear RuntimeError.

    A worker killed by a signal (most often the out-of-memory killer) makes
    the main process fail on a reset connection, with PyTorch's
    ``DataLoader worker (pid N) is killed by signal`` line printed only at
    exit. The error raised here says so and what to do. An exception raised
    inside the dataset itself is not touched: PyTorch re-raises it with the
    worker's traceback.
    """
    try:
        yield
    except WORKER_PIPE_ERRORS as error:
        raise RuntimeError(
            f'A DataLoader worker process died while sending a batch ({type(error).__name__}: '
            f'{error}). It was most likely killed by a signal, often the out-of-memory killer '
            '(see "DataLoader worker (pid N) is killed by signal" below). Lower '
            '*_dataloader.num_workers or batch_size, or set num_workers=0 to run the pipeline '
            'in the main process and see its own error.') from error
