"""Nearest-neighbour search in a memory bank that stays fast as the bank grows.

Exact search (:func:`ml.components.coreset.nearest_neighbors`) compares every
query with every bank row, so PatchCore's inference cost grows linearly with
the number of training images: 700 training images of 256x256 give a bank of
about 72,000 rows and about one image per second on 2 CPU cores.

An inverted-file index (IVF; Jegou et al., "Product quantization for nearest
neighbor search", TPAMI 2011, section IV-A, without the quantisation) splits
the bank into ``lists`` cells by k-means and compares a query only with the
rows of the ``probes`` cells whose centroids are nearest to it. Distances to
the rows compared are exact, so an answer can only be too large (the true
nearest row sat in a cell that was not probed), never too small.

The bank is stored sorted by cell: cell ``c`` holds rows
``offsets[c]:offsets[c + 1]``. Centroids and offsets are plain tensors, so an
index travels inside a ``torch.load(weights_only=True)`` artifact and runs on
any device.
"""
from __future__ import annotations

import math

import torch

from ml.components.coreset import nearest_neighbors

def auto_lists(rows: int) -> int:
    """Cells for a bank of ``rows``: sqrt(rows) (128 cells for 16k rows, 268 for 72k), so a
    cell and the list of centroids cost about the same to scan."""
    return max(1, min(rows, int(round(math.sqrt(rows)))))


def ivf_build(
    bank: torch.Tensor, lists: int, seed: int = 0, iterations: int = 8, sample_per_list: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """k-means cells of ``bank`` (K, D).

    Returns ``order`` (K,): the bank row at each sorted position (store
    ``bank[order]``), ``centroids`` (lists, D) and ``offsets`` (lists + 1,).
    Lloyd iterations run on a seeded random sample of at most
    ``sample_per_list * lists`` rows, so building costs under a second even for
    large banks, and on the CPU the same inputs give the same index (a GPU's
    atomic additions may reorder sums; the index is saved with the model anyway).
    """
    k = bank.shape[0]
    if k == 0:
        raise ValueError("cannot index an empty memory bank")
    lists = max(1, min(lists, k))
    points = bank.float()
    generator = torch.Generator().manual_seed(seed)
    sample = points[torch.randperm(k, generator=generator)[: sample_per_list * lists].to(points.device)]
    centroids = sample[:lists].clone()
    for _ in range(iterations):
        _, assign = nearest_neighbors(sample, centroids, 1)
        assign = assign.squeeze(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, sample)
        counts = torch.bincount(assign, minlength=lists).to(sample.dtype)
        filled = counts > 0
        # An empty cell keeps its old centroid (it stays empty or catches rows later).
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
    _, assign = nearest_neighbors(points, centroids, 1)
    assign = assign.squeeze(1)
    order = torch.argsort(assign, stable=True)
    counts = torch.bincount(assign, minlength=lists)
    offsets = torch.zeros(lists + 1, dtype=torch.long, device=counts.device)
    offsets[1:] = torch.cumsum(counts, 0)
    return order, centroids.contiguous(), offsets


def ivf_search(
    queries: torch.Tensor,
    bank: torch.Tensor,
    bank_sq_norms: torch.Tensor,
    centroids: torch.Tensor,
    offsets: torch.Tensor,
    probes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (M, 1) and indices (M, 1) of the nearest row among the ``probes`` cells
    nearest to each query (M, D), in a bank (K, D) sorted by cell (see :func:`ivf_build`).

    ``bank_sq_norms`` (K,) are the rows' squared norms; a row whose norm is
    ``inf`` is never returned (how a caller hides rows without rebuilding).
    Queries are grouped by cell, so each cell is one matrix product with all
    queries probing it. A query whose probed cells hold no usable row is
    answered by exact search.
    """
    m = queries.shape[0]
    lists = centroids.shape[0]
    probes = max(1, min(probes, lists))
    device = queries.device
    best = torch.full((m,), float("inf"), device=device)
    best_index = torch.zeros(m, dtype=torch.long, device=device)
    if m == 0:
        return best.unsqueeze(1), best_index.unsqueeze(1)
    _, probed = nearest_neighbors(queries, centroids, probes)  # (M, probes)
    cells = probed.reshape(-1)
    by_cell = torch.argsort(cells, stable=True)
    query_of = torch.div(by_cell, probes, rounding_mode="floor")  # queries grouped by cell
    counts = torch.bincount(cells, minlength=lists).tolist()
    bounds = offsets.tolist()
    query_sq = (queries * queries).sum(1)
    start = 0
    for cell, count in enumerate(counts):
        if count == 0:
            continue
        q_index = query_of[start : start + count]
        start += count
        low, high = bounds[cell], bounds[cell + 1]
        if high == low:
            continue
        q = queries.index_select(0, q_index)
        d2 = torch.addmm(bank_sq_norms[low:high].unsqueeze(0), q, bank[low:high].T, alpha=-2.0)
        value, index = d2.min(dim=1)
        value.add_(query_sq.index_select(0, q_index))
        # A query probes each cell once, so q_index has no repeats: plain masked writes suffice.
        better = value < best.index_select(0, q_index)
        winners = q_index[better]
        best.index_copy_(0, winners, value[better])
        best_index.index_copy_(0, winners, index[better] + low)
    unanswered = torch.isinf(best).nonzero().squeeze(1)
    if unanswered.numel():
        distances, index = nearest_neighbors(queries[unanswered], bank, 1, bank_sq_norms)
        best.index_copy_(0, unanswered, distances.squeeze(1).square())
        best_index.index_copy_(0, unanswered, index.squeeze(1))
    return best.clamp_min_(0).sqrt_().unsqueeze(1), best_index.unsqueeze(1)
