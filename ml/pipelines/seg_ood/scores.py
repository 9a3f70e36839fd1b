"""Per-pixel anomaly scores from a segmentation network's logits (road-scene paper, section III-IV).

Each takes logits ``(N, C, H, W)`` over the known classes (plus, for ``void``,
a void channel) and returns ``(N, H, W)`` scores, higher = more anomalous:

- ``msp`` (eq. 7): ``1 - max_c softmax(f)_c``;
- ``maxlogit`` (eq. 8): ``-max_c f_c``;
- ``max_entropy`` (eq. 9): ``-sum_c p_c log p_c``, the entropy of the softmax;
- ``msp_temperature`` (eq. 10): ``1 - max_c softmax(f / T)_c``;
- ``void`` (eq. 11): the softmax probability of the void class, for a network
  trained with void as a class of its own.
"""
from __future__ import annotations

import torch

SCORES = ("msp", "maxlogit", "max_entropy", "msp_temperature", "void")
# The paper's grid for the temperature (Table 3).
TEMPERATURE_GRID = (0.5, 0.75, 1.0, 1.1, 1.5, 2.0)


def anomaly_scores(logits: torch.Tensor, score: str, *, temperature: float = 1.0, void_index: int | None = None) -> torch.Tensor:
    """``(N, C, H, W)`` logits -> ``(N, H, W)`` anomaly scores of the named kind (see the module doc).

    ``void_index``: channel of the void class; excluded from the known classes
    of the other scores, as the paper's Tables 2-3 exclude it.
    """
    if logits.ndim != 4:
        raise ValueError(f"expected logits (N, C, H, W), got {tuple(logits.shape)}")
    logits = logits.float()
    known = logits
    if void_index is not None:
        keep = [c for c in range(logits.shape[1]) if c != void_index]
        known = logits[:, keep]
    if score == "msp":
        return 1.0 - known.softmax(dim=1).amax(dim=1)
    if score == "maxlogit":
        return -known.amax(dim=1)
    if score == "max_entropy":
        log_p = known.log_softmax(dim=1)
        return -(log_p.exp() * log_p).sum(dim=1)
    if score == "msp_temperature":
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        return 1.0 - (known / temperature).softmax(dim=1).amax(dim=1)
    if score == "void":
        if void_index is None:
            raise ValueError("the 'void' score needs a network trained with a void class (void_class: true)")
        return logits.softmax(dim=1)[:, void_index]
    raise ValueError(f"unknown score {score!r}; known scores: {', '.join(SCORES)}")


def calibrate_temperature(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, grid=TEMPERATURE_GRID) -> tuple[float, dict[float, float]]:
    """Temperature of the grid with the lowest cross-entropy (negative log-likelihood) of the known-class
    ``labels`` (N, H, W) under ``softmax(logits / T)`` (temperature scaling, Guo et al.; the paper's grid
    0.5-2). Returns the best T and the NLL of every T."""
    nll = {}
    for t in grid:
        nll[float(t)] = float(torch.nn.functional.cross_entropy(logits.float() / t, labels.long(), ignore_index=ignore_index))
    best = min(nll, key=nll.get)
    return best, nll
