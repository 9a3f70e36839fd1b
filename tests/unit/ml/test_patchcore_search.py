"""PatchCore's memory-bank search: the IVF index finds the neighbours exact search finds,
"auto" keeps exact search for small banks, and the index survives save -> load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml import registry
from ml.components.coreset import nearest_neighbors
from ml.components.search import auto_lists, ivf_build, ivf_search
from ml.config import ConfigError
from ml.data.synthetic import generate
from ml.pipelines.patchcore import PatchCorePipeline
from ml.pipelines.patchcore.config import AUTO_IVF_MIN_ROWS, PatchCoreConfig

SIZE = 96


def clustered(n_clusters: int, per_cluster: int, dim: int = 24, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_clusters, dim, generator=generator) * 4
    return centers.repeat_interleave(per_cluster, 0) + torch.randn(n_clusters * per_cluster, dim, generator=generator)


def indexed(bank: torch.Tensor, lists: int):
    order, centroids, offsets = ivf_build(bank, lists, seed=0)
    sorted_bank = bank[order]
    return order, sorted_bank, (sorted_bank * sorted_bank).sum(1), centroids, offsets


def test_index_probing_every_cell_is_exact_search():
    bank = clustered(12, 40)
    queries = clustered(12, 10, seed=1)
    order, sorted_bank, sq_norms, centroids, offsets = indexed(bank, 10)
    assert offsets[0] == 0 and offsets[-1] == len(bank) and bool((offsets[1:] >= offsets[:-1]).all())
    distances, index = ivf_search(queries, sorted_bank, sq_norms, centroids, offsets, probes=10)
    expected, expected_index = nearest_neighbors(queries, bank, 1)
    assert torch.allclose(distances, expected, atol=1e-4)
    assert torch.equal(order[index.squeeze(1)], expected_index.squeeze(1))


def test_index_probing_few_cells_stays_close_to_exact_search():
    bank = clustered(40, 50)
    queries = clustered(40, 20, seed=1)
    order, sorted_bank, sq_norms, centroids, offsets = indexed(bank, auto_lists(len(bank)))
    distances, index = ivf_search(queries, sorted_bank, sq_norms, centroids, offsets, probes=4)
    expected, expected_index = nearest_neighbors(queries, bank, 1)
    recall = (order[index.squeeze(1)] == expected_index.squeeze(1)).float().mean().item()
    assert recall >= 0.9
    # A miss can only be farther than the true nearest row, never nearer, and not by much.
    assert bool((distances >= expected - 1e-4).all())
    assert float(((distances - expected) / expected).mean()) < 0.02


def test_hidden_rows_are_never_returned_even_when_whole_cells_are_hidden():
    bank = clustered(8, 30)
    order, sorted_bank, sq_norms, centroids, offsets = indexed(bank, 8)
    queries = sorted_bank[offsets[2] : offsets[3]]  # every row of cell 2 queries itself
    hidden = torch.zeros(len(bank), dtype=torch.bool)
    hidden[offsets[2] : offsets[3]] = True
    # One probe: each query looks in cell 2 only, finds nothing usable, and falls back to exact search.
    distances, index = ivf_search(queries, sorted_bank, sq_norms.masked_fill(hidden, float("inf")), centroids, offsets, 1)
    assert not bool(hidden[index.squeeze(1)].any())
    expected, _ = nearest_neighbors(queries, sorted_bank[~hidden], 1)
    assert torch.allclose(distances, expected, atol=1e-4)


def test_auto_search_policy():
    config = PatchCoreConfig()
    assert config.search == "auto"
    assert not config.uses_index(AUTO_IVF_MIN_ROWS - 1) and config.uses_index(AUTO_IVF_MIN_ROWS)
    assert PatchCoreConfig(search="ivf").uses_index(100) and not PatchCoreConfig(search="exact").uses_index(10**7)
    schema = registry.describe("patchcore")["config_schema"]["properties"]
    assert schema["search"]["enum"] == ["auto", "exact", "ivf"] and "exact" in schema["search"]["description"]
    assert schema["search_probes"]["minimum"] == 1
    with pytest.raises(ConfigError) as error:
        PatchCorePipeline({"search": "hnsw"})
    assert error.value.key == "search"


@pytest.fixture(scope="module")
def data():
    return generate(5, 0, size=SIZE, seed=1), generate(2, 3, size=SIZE, seed=2)


@pytest.fixture(scope="module")
def exact_and_ivf(data):
    train, _ = data
    common = {"image_size": SIZE, "coreset_ratio": 0.5, "calibration_images": 3}
    exact = PatchCorePipeline({**common, "search": "auto"})  # a 720-row bank: auto means exact
    exact.fit(train)
    ivf = PatchCorePipeline({**common, "search": "ivf", "search_probes": 6})
    ivf.fit(train)
    return exact, ivf


def test_small_bank_auto_is_exact_and_ivf_agrees_with_it(exact_and_ivf, data):
    exact, ivf = exact_and_ivf
    assert exact.meta["search"] == "exact" and not exact.model.has_index
    assert ivf.model.has_index and ivf.meta["search"].startswith("ivf")
    # Same coreset, only sorted by cell.
    assert exact.model.memory_bank.shape == ivf.model.memory_bank.shape
    assert torch.allclose(exact.model.memory_bank.sum(0), ivf.model.memory_bank.sum(0), rtol=1e-4, atol=1e-2)
    images = [s.image for s in data[1]]
    a, b = exact.predict(images), ivf.predict(images)
    assert np.all(b.maps >= a.maps - 1e-4)  # approximate search never finds a nearer row
    assert np.abs(b.maps - a.maps).mean() < 0.02 * a.maps.mean()
    assert np.argsort(a.scores).tolist() == np.argsort(b.scores).tolist()


def test_save_load_keeps_the_index(exact_and_ivf, data, tmp_path):
    _, ivf = exact_and_ivf
    path = tmp_path / "patchcore.pt"
    ivf.save(path)
    artifact = torch.load(path, weights_only=True)
    assert artifact["state"]["ivf_centroids"].shape[0] == ivf.model.ivf_centroids.shape[0]
    loaded = registry.load(path)
    assert loaded.model.has_index and torch.equal(loaded.model.ivf_offsets, ivf.model.ivf_offsets)
    images = [s.image for s in data[1]]
    a, b = ivf.predict(images), loaded.predict(images)
    assert np.array_equal(a.maps, b.maps) and np.array_equal(a.scores, b.scores)


def test_an_artifact_without_index_is_indexed_the_same_way_on_every_load(exact_and_ivf, tmp_path):
    exact, _ = exact_and_ivf
    artifact = exact.to_artifact()
    artifact["config"]["search"] = "ivf"  # as if saved before indexes existed, by a config that wants one
    first, second = (registry.get("patchcore").from_artifact(artifact) for _ in range(2))
    assert first.model.has_index
    assert torch.equal(first.model.ivf_centroids, second.model.ivf_centroids)
    assert torch.equal(first.model.memory_bank, second.model.memory_bank)
