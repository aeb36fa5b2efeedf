"""Client partitions (iid, Dirichlet by class) and the client sampler."""
import itertools

import numpy as np
import pytest

from detlab.datasets.federated import (NO_LABEL, class_histogram, dirichlet_partition,
                                       iid_partition, image_labels)
from detlab.datasets.samplers import ClientSampler


def assert_is_partition(shares, num_samples):
    joined = np.concatenate(shares)
    assert sorted(joined.tolist()) == list(range(num_samples))


def test_iid_gives_near_equal_disjoint_shares():
    shares = iid_partition(10, 3, seed=1)
    assert_is_partition(shares, 10)
    assert sorted(len(share) for share in shares) == [3, 3, 4]
    assert all(np.array_equal(a, b) for a, b in zip(shares, iid_partition(10, 3, seed=1)))
    assert not all(np.array_equal(a, b) for a, b in zip(shares, iid_partition(10, 3, seed=2)))


def test_dirichlet_small_alpha_skews_classes_large_alpha_does_not():
    labels = np.repeat([0, 1, 2], 200)

    def skew(alpha):
        shares = dirichlet_partition(labels, 4, alpha, seed=0)
        assert_is_partition(shares, len(labels))
        # The share of each client's images that its most common class takes.
        return np.mean([np.bincount(labels[share], minlength=3).max() / len(share)
                        for share in shares])

    assert skew(0.1) > 0.6
    assert skew(1000.0) < 0.4


def test_dirichlet_respects_min_size_and_reports_impossible_splits():
    labels = np.repeat([0, 1], 20)
    shares = dirichlet_partition(labels, 4, 0.5, seed=0, min_size=5)
    assert min(len(share) for share in shares) >= 5
    with pytest.raises(ValueError, match='need 50 images; the dataset has 40'):
        dirichlet_partition(labels, 5, 0.5, min_size=10)
    with pytest.raises(ValueError, match='alpha must be a number > 0'):
        dirichlet_partition(labels, 2, 0)
    with pytest.raises(ValueError, match='raise alpha or use fewer clients'):
        dirichlet_partition(labels, 4, 0.001, seed=0, min_size=10)


def test_too_many_clients_is_an_error():
    with pytest.raises(ValueError, match='Cannot give 5 clients'):
        iid_partition(4, 5)
    with pytest.raises(ValueError, match='num_clients must be a positive int'):
        iid_partition(4, 0)


def test_image_label_is_the_most_frequent_class():
    instances = {0: [2, 1, 2], 1: [], 2: [0, 1]}
    labels = image_labels(3, instances.__getitem__)
    assert labels.tolist() == [2, NO_LABEL, 0]


def test_class_histogram_counts_instances():
    class Annotated:
        def __len__(self):
            return 3

        def get_cat_ids(self, index):
            return [[0, 2, 2], [], [2]][index]

    assert class_histogram(Annotated(), num_classes=4) == [1, 0, 3, 0]
    assert class_histogram([1, 2, 3]) is None


def test_client_sampler_streams_whole_passes_per_round():
    sampler = ClientSampler(list(range(5)), client=1, seed=0)
    sampler.set_round(3)
    first = list(itertools.islice(iter(sampler), 10))
    assert sorted(first[:5]) == sorted(first[5:]) == list(range(5))
    assert list(itertools.islice(iter(sampler), 10)) == first  # reproducible
    sampler.set_round(4)
    assert list(itertools.islice(iter(sampler), 10)) != first
    other = ClientSampler(list(range(5)), client=2, seed=0)
    other.set_round(3)
    assert list(itertools.islice(iter(other), 10)) != first
    with pytest.raises(ValueError, match='client 7 has no images'):
        ClientSampler([], client=7)
