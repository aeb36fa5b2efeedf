"""Paste RoI mask probabilities into a full image, chunk by chunk (MMDetection's paste)."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

#: Bytes a pasted pixel costs while a chunk is sampled: the (x, y) float grid
#: and the float probability.
BYTES_PER_PASTED_PIXEL = 12
#: Upper bound on those bytes per chunk.
PASTE_MEMORY_LIMIT = 1024**3


def paste_masks_in_image(mask_probs: Tensor, boxes: Tensor, img_h: int, img_w: int,
                         threshold: float,
                         memory_limit: int = PASTE_MEMORY_LIMIT) -> Tensor:
    """Resample each RoI's mask into its box of an ``img_h x img_w`` image.

    Each image pixel centre ``(x + 0.5, y + 0.5)`` is mapped into its box and
    the RoI mask is sampled there bilinearly (``grid_sample``,
    ``align_corners=False``, zero outside), as MMDetection's and Detectron2's
    ``_do_paste_mask``. On the CPU the masks are pasted one at a time, each
    only over its box's pixels (plus one pixel of margin); on a GPU in chunks
    of whole images small enough that a chunk's grid and samples stay under
    ``memory_limit`` bytes. Both give every pixel the same value.

    Args:
        mask_probs (Tensor): (N, 1, h, w) probabilities in [0, 1].
        boxes (Tensor): (N, 4) x1, y1, x2, y2 in the output image's pixels.
        img_h, img_w (int): Output image size.
        threshold (float): ``>= 0``: bool masks ``prob >= threshold``;
            negative: uint8 masks ``prob * 255`` (for viewing soft masks).
        memory_limit (int): Bytes of working memory a GPU chunk may take.

    Returns:
        Tensor: (N, img_h, img_w) bool (or uint8) masks on the input's device.
    """
    num = mask_probs.size(0)
    device = mask_probs.device
    img_h, img_w = int(img_h), int(img_w)
    out = torch.zeros(num, img_h, img_w, device=device,
                      dtype=torch.bool if threshold >= 0 else torch.uint8)
    if num == 0:
        return out
    on_cpu = device.type == 'cpu'
    num_chunks = num if on_cpu else paste_chunks(num, img_h, img_w, memory_limit)
    for inds in torch.chunk(torch.arange(num, device=device), num_chunks):
        probs, region = paste_chunk(mask_probs[inds], boxes[inds], img_h, img_w,
                                    skip_empty=on_cpu)
        if threshold >= 0:
            out[(inds, ) + region] = probs >= threshold
        else:
            out[(inds, ) + region] = (probs * 255).to(torch.uint8)
    return out


def paste_chunks(num: int, img_h: int, img_w: int, memory_limit: int = PASTE_MEMORY_LIMIT) -> int:
    """How many chunks keep ``num`` whole-image pastes under ``memory_limit`` bytes each."""
    if img_h * img_w * BYTES_PER_PASTED_PIXEL > memory_limit:
        raise ValueError(f'one {img_h}x{img_w} mask needs more than memory_limit='
                         f'{memory_limit} bytes to paste; raise the limit')
    return min(num, max(1, math.ceil(num * img_h * img_w * BYTES_PER_PASTED_PIXEL /
                                     memory_limit)))


def paste_chunk(mask_probs: Tensor, boxes: Tensor, img_h: int, img_w: int,
                skip_empty: bool) -> Tuple[Tensor, tuple]:
    """Sampled probabilities of a chunk and the image region they cover.

    With ``skip_empty`` only the pixels of the chunk's boxes (one pixel of
    margin, clipped to the image) are sampled; otherwise the whole image.

    Returns:
        tuple: (n, h', w') float probabilities and the ``(rows, cols)``
        slices of the image they belong to (empty for the whole image).
    """
    if skip_empty:
        x0_int, y0_int = (boxes.min(dim=0).values.floor()[:2] - 1).clamp(min=0).int().tolist()
        x1_int = int((boxes[:, 2].max().ceil() + 1).clamp(max=img_w))
        y1_int = int((boxes[:, 3].max().ceil() + 1).clamp(max=img_h))
    else:
        x0_int, y0_int, x1_int, y1_int = 0, 0, img_w, img_h
    x0, y0, x1, y1 = boxes.split(1, dim=1)  # each (n, 1)
    device = mask_probs.device
    img_y = torch.arange(y0_int, y1_int, device=device).float() + 0.5
    img_x = torch.arange(x0_int, x1_int, device=device).float() + 0.5
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1  # (n, h')
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1  # (n, w')
    # A box of zero width or height divides by zero; those pixels sample the mask's
    # centre line (as MMDetection): within a pixel of the box with ``skip_empty``,
    # across the whole image without.
    img_x = img_x.masked_fill(torch.isinf(img_x), 0)
    img_y = img_y.masked_fill(torch.isinf(img_y), 0)
    n = mask_probs.size(0)
    grid = torch.stack([img_x[:, None, :].expand(n, img_y.size(1), img_x.size(1)),
                        img_y[:, :, None].expand(n, img_y.size(1), img_x.size(1))], dim=3)
    probs = F.grid_sample(mask_probs.float(), grid, align_corners=False)[:, 0]
    if skip_empty:
        return probs, (slice(y0_int, y1_int), slice(x0_int, x1_int))
    return probs, ()
