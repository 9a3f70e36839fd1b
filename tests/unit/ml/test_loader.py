"""Prefetching loader and batched map post-processing (the GPU path's CPU side)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ml.components.features import join_maps, maps_to_input_sizes, upsample
from ml.data.loader import parallel_map, prefetch


def test_prefetch_keeps_order_and_prepares_off_the_consumer_thread():
    main = threading.get_ident()
    read_in, prepared_in = [], []

    def items():
        for i in range(7):
            read_in.append(threading.get_ident())
            yield i

    def prepare(i):
        prepared_in.append(threading.get_ident())
        return i * i

    assert list(prefetch(items(), prepare, ahead=2)) == [i * i for i in range(7)]
    assert set(read_in) == {main} and main not in set(prepared_in)


def test_prefetch_reads_at_most_ahead_items_before_they_are_taken():
    read = []

    def items():
        for i in range(100):
            read.append(i)
            yield i

    stream = prefetch(items(), lambda i: i, ahead=3)
    assert next(stream) == 0
    assert len(read) == 4  # the one taken + 3 ahead
    stream.close()
    assert len(read) == 4


def test_prefetch_raises_a_failed_preparation_where_it_is_taken():
    def prepare(i):
        if i == 2:
            raise ValueError("image 2 is corrupt")
        return i

    stream = prefetch(range(5), prepare)
    assert next(stream) == 0 and next(stream) == 1
    with pytest.raises(ValueError, match="image 2 is corrupt"):
        next(stream)


def test_parallel_map_keeps_order():
    assert parallel_map(lambda x: x + 1, range(50), workers=4) == list(range(1, 51))
    assert parallel_map(str, [], workers=4) == []


def test_maps_of_equally_sized_images_come_back_as_one_array_equal_to_per_image_resizing():
    maps = torch.rand(3, 32, 32)
    images = [np.zeros((50, 70, 3), np.uint8)] * 3
    out = maps_to_input_sizes(maps, images)
    assert isinstance(out, np.ndarray) and out.shape == (3, 50, 70) and out.dtype == np.float32
    for m, o in zip(maps, out):
        assert np.allclose(upsample(m.unsqueeze(0), (50, 70))[0].numpy(), o, atol=1e-6)
    mixed = maps_to_input_sizes(maps, [np.zeros((50, 70, 3), np.uint8), np.zeros((20, 30, 3), np.uint8), images[0]])
    assert isinstance(mixed, list) and [m.shape for m in mixed] == [(50, 70), (20, 30), (50, 70)]
    joined = join_maps([out, out[:1]])
    assert isinstance(joined, np.ndarray) and joined.shape == (4, 50, 70)
    assert [m.shape for m in join_maps([out[:1], mixed])] == [(50, 70), (50, 70), (20, 30), (50, 70)]
