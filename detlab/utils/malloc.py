"""glibc malloc thresholds for image pipelines.

A training sample allocates a few MB (the decoded image, the resized one,
the flipped one, the CHW tensor) and frees all of it before the next sample.
glibc sizes its mmap threshold dynamically from what was freed before and
returns heap memory to the kernel above a trim threshold of twice that, so,
depending on the process's history, every buffer may come back as fresh
pages: on coco128 (``benchmarks/bench_pipeline.py``) anything from 0 to about
1,500 minor page faults per image, which doubled the pipeline's time on a
2-core VM from one run to the next. Fixed thresholds keep freed image buffers
in the heap for the next sample; the price is at most ``trim_threshold`` of
freed memory a process keeps instead of returning it.
"""
import ctypes
import ctypes.util
import platform

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: glibc's largest mmap threshold on 64-bit systems; images above it are mmapped.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024

_tuned = None


def keep_image_buffers(mmap_threshold: int = MMAP_THRESHOLD,
                       trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds in this process (once).

    DataLoader workers started by fork inherit the setting. Elsewhere than
    glibc (macOS, musl) this does nothing.

    Returns:
        bool: Whether glibc took both settings.
    """
    global _tuned
    if _tuned is None:
        _tuned = False
        if platform.libc_ver()[0] == 'glibc':
            mallopt = ctypes.CDLL(ctypes.util.find_library('c')).mallopt
            _tuned = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)
                          and mallopt(M_TRIM_THRESHOLD, trim_threshold))
    return _tuned
