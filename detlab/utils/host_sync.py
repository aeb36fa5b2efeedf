"""Finding the ops of a training step that make the host wait for the device.

On a GPU, an op whose result the host must read (a value through ``.item()``, ``bool(t)``
or ``int(t)``) or whose output size depends on the values (``nonzero``, boolean-mask
indexing, ``masked_select``, ``unique``, ``repeat_interleave`` without ``output_size``)
waits until the device has finished everything queued before it; the host then cannot queue
the next kernels ahead of the device. Those ops are the same on the CPU, so running a step
on CPU tensors under :class:`SyncRecorder` finds them without a GPU: where they run, and
from which line of detlab. ``tools/dev/sync_audit.py`` does it for a config's train step.
"""
import collections
import traceback
from typing import Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: aten ops that make the host wait for the device wherever they run: values read back,
#: or outputs whose size depends on the values.
SYNCING_OPS = frozenset({'aten._local_scalar_dense', 'aten.item', 'aten.is_nonzero',
                         'aten.equal', 'aten.nonzero', 'aten.masked_select', 'aten.unique',
                         'aten._unique', 'aten._unique2', 'aten.unique_dim',
                         'aten.unique_consecutive'})

_INDEX_OPS = ('aten.index', 'aten.index_put', 'aten.index_put_', 'aten._index_put_impl_')


def op_synchronises(func, args, kwargs) -> bool:
    """Whether the aten op ``func`` called with ``args`` and ``kwargs`` would make the host
    wait for an accelerator: :data:`SYNCING_OPS`, ``repeat_interleave`` with a tensor of
    repeats and no ``output_size``, and indexing (``index``, ``index_put``) with a bool
    mask."""
    name = str(func.overloadpacket)
    if name in SYNCING_OPS:
        return True
    if name == 'aten.repeat_interleave':  # overloads 'Tensor', 'self_Tensor', 'self_int'
        return func._overloadname != 'self_int' and kwargs.get('output_size') is None
    if name in _INDEX_OPS:
        return any(index is not None and index.dtype in (torch.bool, torch.uint8)
                   for index in args[1])
    return False


def _caller_line(package: str) -> Optional[str]:
    """``'path:line code'`` of the innermost frame whose file lies in ``package`` (this
    module's own frames aside)."""
    marker = f'/{package}/'
    for frame in reversed(traceback.extract_stack()):
        if marker in frame.filename and frame.filename != __file__:
            path = package + '/' + frame.filename.split(marker, 1)[1]
            return f'{path}:{frame.lineno} {frame.line}'
    return None


class SyncRecorder(TorchDispatchMode):
    """Records, while active, every aten op it sees (``names``), the ones that would make
    the host wait for an accelerator (``syncing``, see :func:`op_synchronises`) and, for
    those, how often each runs from each line of ``package`` (``sites``, a Counter of
    ``(op name, 'path:line code')``; the line is the innermost frame in ``package``, or
    ``'?'``).

    Run the code on CPU tensors inside ``with SyncRecorder() as ops:`` and read
    ``ops.syncing`` or ``ops.sites``. ``also`` names more aten ops to record like
    them, e.g. ``{'aten.lift_fresh'}``: tensors made from host values, which are
    copied to the device on a GPU (and make the host wait there), but also those a
    program makes on the CPU on purpose, which the CPU cannot tell apart.
    """

    def __init__(self, package: str = 'detlab', also: frozenset = frozenset()) -> None:
        super().__init__()
        self.package = package
        self.also = frozenset(also)
        self.names, self.syncing = set(), set()
        self.sites = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        self.names.add(name)
        if name in self.also or op_synchronises(func, args, kwargs):
            self.syncing.add(name)
            self.sites[(name, _caller_line(self.package) or '?')] += 1
        return func(*args, **kwargs)
