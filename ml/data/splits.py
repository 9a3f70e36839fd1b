"""The validation split a training holds back when the job gives none (issue 8).

Pure Python + NumPy (no torch): the same rule can be shown in the web process.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np

from ml.data.io import binarize_mask

T = TypeVar("T")


def is_anomalous(sample) -> bool:
    """A sample counts as anomalous when its mask has an anomalous pixel or its label says so."""
    if sample.mask is not None and bool((binarize_mask(sample.mask) > 0).any()):
        return True
    return sample.label == 1


def hold_out_validation(
    train: Sequence[T],
    val: Sequence[T] | None,
    *,
    fraction: float = 0.15,
    minimum: int = 4,
    seed: int = 0,
    usable: Callable[[T], bool] = lambda sample: True,
) -> tuple[list[T], list[T], str]:
    """``(train, val, source)``: the samples to learn from, those to validate on, and where the latter came from.

    The job's own validation samples win (``source = "job"``) when at least
    one of them is ``usable``. Otherwise ``fraction`` of ``train`` (at least
    ``minimum`` samples) is held back, stratified by :func:`is_anomalous` so
    normal and anomalous images are both represented when both exist, drawn
    with a generator seeded by ``seed`` (the same call holds back the same
    images), and disjoint from what is returned for training
    (``source = "held back"``). When holding back would leave fewer than
    ``minimum`` training samples, nothing is held back (``source = "none"``)
    and the caller trains for its whole budget without early stopping.
    """
    if val and any(usable(s) for s in val):
        return list(train), list(val), "job"
    train = list(train)
    n = len(train)
    wanted = max(minimum, int(round(fraction * n)))
    if n - wanted < minimum:
        return train, [], "none"
    rng = np.random.default_rng(seed)
    strata: dict[bool, list[int]] = {False: [], True: []}
    for i, sample in enumerate(train):
        strata[is_anomalous(sample)].append(i)
    # Proportional allocation; a stratum with at least two samples gives at
    # least one, so both kinds of image are seen by the validation.
    take: dict[bool, int] = {}
    for kind, members in strata.items():
        share = int(round(wanted * len(members) / n))
        if len(members) >= 2:
            share = max(share, 1)
        take[kind] = min(share, len(members) - (1 if len(members) >= 2 else len(members)))
    while sum(take.values()) < wanted:
        kind = max(strata, key=lambda k: len(strata[k]) - take[k])
        if len(strata[kind]) - take[kind] <= 1:
            break
        take[kind] += 1
    while sum(take.values()) > wanted:
        kind = max(take, key=lambda k: take[k])
        take[kind] -= 1
    held: set[int] = set()
    for kind, members in strata.items():
        if take[kind] > 0:
            held.update(int(i) for i in rng.choice(members, size=take[kind], replace=False))
    return [s for i, s in enumerate(train) if i not in held], [train[i] for i in sorted(held)], "held back"
