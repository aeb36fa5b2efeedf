"""Splitting one training set among federated clients, and describing each share.

A partition is a list with one entry per client: the indices (into the
dataset) of the images that client holds. ``iid`` deals the images out at
random in equal shares; ``dirichlet`` gives each client a skewed mix of
classes, the usual non-IID benchmark split (Hsu et al. 2019): every image is
labelled by its most frequent class and, class by class, the images of that
class are divided among the clients in proportions drawn from
``Dirichlet(alpha, ..., alpha)``. A small ``alpha`` (0.1) leaves most clients
with one or two classes; a large one (100) is close to ``iid``.
"""
from typing import Callable, List, Optional, Sequence

import numpy as np

#: Partition types a config can name (``by_dataset`` is read by the training
#: loop: each client then has its own dataset config instead of indices).
PARTITION_TYPES = ('iid', 'dirichlet', 'by_dataset')
#: Label of an image without instances in :func:`image_labels`.
NO_LABEL = -1
#: Dirichlet draws tried before giving up on giving every client ``min_size`` images.
MAX_DIRICHLET_DRAWS = 1000


def iid_partition(num_samples: int, num_clients: int, seed: int = 0) -> List[np.ndarray]:
    """Shuffle ``range(num_samples)`` and cut it into ``num_clients`` near-equal shares.

    Returns:
        list[np.ndarray]: Sorted int64 indices of each client; sizes differ by at most 1.
    """
    _check_counts(num_samples, num_clients)
    order = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(share) for share in np.array_split(order, num_clients)]


def dirichlet_partition(labels: Sequence[int], num_clients: int, alpha: float, seed: int = 0,
                        min_size: int = 1) -> List[np.ndarray]:
    """Split images among clients by class, in Dirichlet(``alpha``) proportions.

    For each class, the proportions of its images that go to each client are
    drawn from a symmetric Dirichlet distribution; images without a label
    (:data:`NO_LABEL`) are dealt out like one more class. The whole split is
    drawn again until every client holds at least ``min_size`` images.

    Args:
        labels (Sequence[int]): One label per image (its most frequent class).
        num_clients (int): Number of clients, >= 1.
        alpha (float): Concentration, > 0. Smaller is more skewed.
        seed (int): Seed of the draw. Defaults to 0.
        min_size (int): Fewest images a client may hold. Defaults to 1.

    Returns:
        list[np.ndarray]: Sorted int64 indices of each client's images.

    Raises:
        ValueError: Bad ``alpha``/counts, or no draw in :data:`MAX_DIRICHLET_DRAWS`
            gave every client ``min_size`` images (raise ``alpha`` or lower ``num_clients``).
    """
    labels = np.asarray(labels, dtype=np.int64)
    _check_counts(len(labels), num_clients)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f'dirichlet partition: alpha must be a number > 0, got {alpha!r}.')
    if num_clients * min_size > len(labels):
        raise ValueError(f'dirichlet partition: {num_clients} clients of at least {min_size} '
                         f'images need {num_clients * min_size} images; the dataset has '
                         f'{len(labels)}.')
    rng = np.random.default_rng(seed)
    for _ in range(MAX_DIRICHLET_DRAWS):
        shares: List[List[np.ndarray]] = [[] for _ in range(num_clients)]
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            proportions = rng.dirichlet(np.full(num_clients, float(alpha)))
            cuts = (np.cumsum(proportions)[:-1] * len(members)).astype(np.int64)
            for client, part in enumerate(np.split(members, cuts)):
                shares[client].append(part)
        result = [np.sort(np.concatenate(parts)) for parts in shares]
        if min(len(share) for share in result) >= min_size:
            return result
    raise ValueError(
        f'dirichlet partition: no split in {MAX_DIRICHLET_DRAWS} draws gave each of the '
        f'{num_clients} clients at least {min_size} of the {len(labels)} images with '
        f'alpha={alpha}; raise alpha or use fewer clients.')


def image_labels(num_samples: int, cat_ids: Callable[[int], Sequence[int]]) -> np.ndarray:
    """Each image's most frequent class (the smallest on a tie), :data:`NO_LABEL` if none.

    Args:
        num_samples (int): Number of images.
        cat_ids (callable): ``cat_ids(i)`` gives the labels of image ``i``'s
            instances (a detlab dataset's ``get_cat_ids``).
    """
    labels = np.full(num_samples, NO_LABEL, dtype=np.int64)
    for index in range(num_samples):
        found = np.asarray(cat_ids(index), dtype=np.int64)
        if found.size:
            labels[index] = np.bincount(found).argmax()
    return labels


def class_histogram(dataset, num_classes: Optional[int] = None) -> Optional[List[int]]:
    """How many instances of each class ``dataset`` holds, or None if it cannot say.

    Reads only annotations (``get_cat_ids``), never images.
    """
    if not hasattr(dataset, 'get_cat_ids'):
        return None
    found = [label for index in range(len(dataset)) for label in dataset.get_cat_ids(index)]
    counts = np.bincount(np.asarray(found, dtype=np.int64), minlength=num_classes or 0)
    return counts.tolist()


def _check_counts(num_samples: int, num_clients: int) -> None:
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f'num_clients must be a positive int, got {num_clients!r}.')
    if num_samples < num_clients:
        raise ValueError(f'Cannot give {num_clients} clients at least one image each: the '
                         f'dataset has {num_samples}.')
