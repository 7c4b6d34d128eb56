"""Shard planning (how many, which examples each) and the shard files' names."""

import pytest

from pipeline.writing import shards


def test_shard_count_keeps_each_near_the_size_and_at_least_one():
    assert shards.shard_count(0, 100) == 1 and shards.shard_count(100, 100) == 1
    assert shards.shard_count(101, 100) == 2 and shards.shard_count(1000, 64) == 16
    with pytest.raises(ValueError, match="shard size must be positive"):
        shards.shard_count(10, 0)


@pytest.mark.parametrize("n, k", [(1, 1), (7, 3), (10, 4), (12, 12), (5, 9), (1000, 7)])
def test_boundaries_cover_every_example_once_in_order_with_sizes_one_apart(n, k):
    bounds = shards.shard_boundaries(n, k)
    assert len(bounds) == min(n, k) and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in order
    sizes = [end - start for start, end in bounds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and sum(sizes) == n


def test_boundaries_of_an_uneven_split_and_of_none():
    assert shards.shard_boundaries(7, 3) == [(0, 2), (2, 4), (4, 7)]
    with pytest.raises(ValueError, match="empty split"):
        shards.shard_boundaries(0, 2)


def test_file_names_sort_in_order_and_are_recognised():
    names = [shards.shard_file_name("fold3", i, 12) for i in range(12)]
    assert names[0] == "fold3-00000-of-00012.tfrecord" and names == sorted(names)
    assert all(shards.is_shard_file_name(n) for n in names)
    assert not any(shards.is_shard_file_name(n) for n in ("train-0-of-1.tfrecord", "manifest.json", names[0] + ".tmp-12"))
