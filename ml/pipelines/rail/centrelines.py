"""Stage 2 of the rail pipeline: from a rail mask to rail centre lines and square patches along them
(rail-two-stage-anomaly.txt, section III-B "Pixel clustering" and III-C, eq. 3). Pure numpy,
scikit-image and scikit-learn; no torch.

1. Thin the mask to one-pixel centre lines (``skimage.morphology.skeletonize``; the paper takes
   the mean of the rail pixels of a row, which the skeleton generalises to curves).
2. Cluster the centre-line pixels with DBSCAN: each cluster is a piece of one rail. Where a
   cluster forks (a switch: two rails merge), it is split by following one branch from the
   camera end and making the rest new pieces.
3. Join pieces whose end points are close, "based on the horizontal axis difference of the
   end points" (III-B): a piece further from the camera continues a nearer one when it starts
   above the nearer one's far end and its horizontal offset from the nearer piece's
   extrapolation is small.
4. Extend each rail long enough to the region-of-interest border (III-B: "ideally the bottom
   half of the given image") with the slope of its last 20 points, at both ends.
5. Square patches along each rail, adjacent and not overlapping, from ``patch_max`` (20 px) near
   the camera shrinking by ``patch_step`` (2 px) every ``shrink_every`` (4) patches down to
   ``patch_min`` (14 px) (III-C, eq. 3: ``C_p = (l/2, p*l - l/2)`` in the rail's own
   coordinates, ``l`` the current side).

Coordinates are (x, y) image pixels, y growing downwards (towards the camera).
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Rail:
    """One rail's centre line, ordered from the camera (largest y) away from it: (K, 2) float (x, y)."""

    points: np.ndarray

    @property
    def near(self) -> np.ndarray:
        return self.points[0]

    @property
    def far(self) -> np.ndarray:
        return self.points[-1]


@dataclasses.dataclass(frozen=True)
class Patch:
    """A square patch: centre (x, y), side in pixels, the index of its rail and its position p along it."""

    x: float
    y: float
    side: int
    rail: int
    index: int
    between: bool = False  # on the track between two rails (the sleepers), not on a rail
    half_step: bool = False  # halfway between patch ``index`` and the next along the rail (``patch_overlap``)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the square, shifted to lie inside a ``width`` x ``height`` image."""
        side = min(self.side, width, height)
        x0 = int(round(self.x - side / 2))
        y0 = int(round(self.y - side / 2))
        x0 = min(max(x0, 0), width - side)
        y0 = min(max(y0, 0), height - side)
        return x0, y0, x0 + side, y0 + side


def patch_sides(count: int, patch_max: int = 20, patch_min: int = 14, step: int = 2, shrink_every: int = 4) -> list[int]:
    """Sides of the first ``count`` patches along a rail (eq. 3's ``l``): ``patch_max`` for the first
    ``shrink_every`` patches, then ``step`` px smaller every ``shrink_every`` patches, never below ``patch_min``."""
    return [max(patch_min, patch_max - step * (p // shrink_every)) for p in range(count)]


def patch_centres(rail: Rail, sides: list[int] | None = None, **schedule) -> list[tuple[float, float, int]]:
    """Centres (x, y) and sides of adjacent square patches along ``rail`` from its near end (eq. 3):
    patch p's centre lies at arc length ``sum(l_q, q < p) + l_p / 2``; patches stop at the rail's end."""
    pts = rail.points.astype(np.float64)
    if len(pts) < 2:
        return []
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    total = arc[-1]
    out = []
    start = 0.0
    p = 0
    while True:
        if sides is not None and p >= len(sides):
            break
        side = sides[p] if sides is not None else patch_sides(p + 1, **schedule)[-1]
        centre = start + side / 2
        if centre > total:
            break
        x = float(np.interp(centre, arc, pts[:, 0]))
        y = float(np.interp(centre, arc, pts[:, 1]))
        out.append((x, y, side))
        start += side
        p += 1
    return out


def thin(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool rail mask -> (N, 2) int (x, y) pixels of its one-pixel centre lines."""
    from skimage.morphology import skeletonize

    skeleton = skeletonize(np.asarray(mask, bool))
    ys, xs = np.nonzero(skeleton)
    return np.stack([xs, ys], axis=1)


def cluster(points: np.ndarray, eps: float = 3.0, min_samples: int = 3) -> list[np.ndarray]:
    """DBSCAN (scikit-learn) over centre-line pixels; (N, 2) -> clusters of (K, 2) points (noise dropped)."""
    if len(points) == 0:
        return []
    from sklearn.cluster import DBSCAN

    labels = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points.astype(np.float64))
    return [points[labels == k] for k in sorted(set(labels.tolist()) - {-1})]


def trace(points: np.ndarray, max_jump: float = 3.0, min_points: int = 8) -> list[Rail]:
    """Order a cluster into rails from the camera outwards, splitting forks.

    Starting from the point nearest the camera (largest y), repeatedly step to the nearest
    unvisited point within ``max_jump`` px, preferring the direction of travel. Points left
    over (another branch of a switch) are traced again as further rails; pieces shorter than
    ``min_points`` are dropped.
    """
    remaining = points.astype(np.float64)
    rails: list[Rail] = []
    while len(remaining) >= min_points:
        order = np.lexsort((remaining[:, 0], -remaining[:, 1]))
        current = order[0]
        used = np.zeros(len(remaining), bool)
        used[current] = True
        path = [remaining[current]]
        direction = np.array([0.0, -1.0])
        while True:
            delta = remaining - path[-1]
            dist = np.hypot(delta[:, 0], delta[:, 1])
            candidates = np.flatnonzero(~used & (dist <= max_jump))
            if len(candidates) == 0:
                break
            # Nearest first, ties broken by agreement with the direction of travel (stays on a branch).
            along = (delta[candidates] @ direction) / np.maximum(dist[candidates], 1e-9)
            best = candidates[np.argmin(dist[candidates] - 0.5 * along)]
            step = remaining[best] - path[-1]
            direction = 0.7 * direction + 0.3 * step / max(np.hypot(*step), 1e-9)
            used[best] = True
            path.append(remaining[best])
            # Points right beside the path (the skeleton's corners) belong to it too.
            used |= dist <= 1.0
        if len(path) >= min_points:
            rails.append(Rail(np.asarray(path)))
        remaining = remaining[~used]
    return rails


def _fit_end(points: np.ndarray, n: int = 20) -> tuple[float, float]:
    """Least-squares x = a*y + b over the first ``n`` points (the slope of the last 20 points, III-B)."""
    pts = points[:n]
    ys, xs = pts[:, 1], pts[:, 0]
    if np.ptp(ys) < 1e-6:
        return 0.0, float(xs.mean())
    a, b = np.polyfit(ys, xs, 1)
    return float(a), float(b)


def join(rails: list[Rail], max_dx: float = 12.0, max_gap: float = 60.0) -> list[Rail]:
    """Join pieces of one rail (III-B): piece B continues piece A when B's near end lies above A's
    far end by at most ``max_gap`` rows and within ``max_dx`` px horizontally of A's far end
    extrapolated to B's row. The closest candidate (horizontal difference) joins first."""
    pieces = sorted(rails, key=lambda r: -r.near[1])
    joined = True
    while joined:
        joined = False
        best = None
        for i, a in enumerate(pieces):
            slope, _ = _fit_end(a.points[::-1])
            for j, b in enumerate(pieces):
                if i == j:
                    continue
                gap = a.far[1] - b.near[1]
                if not 0 <= gap <= max_gap:
                    continue
                predicted_x = a.far[0] + slope * (b.near[1] - a.far[1])
                dx = abs(b.near[0] - predicted_x)
                if dx <= max_dx and (best is None or dx < best[0]):
                    best = (dx, i, j)
        if best is not None:
            _, i, j = best
            merged = Rail(np.concatenate([pieces[i].points, pieces[j].points]))
            pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [merged]
            pieces.sort(key=lambda r: -r.near[1])
            joined = True
    return pieces


def extend(rail: Rail, roi_top: int, bottom: int, width: int, fit_points: int = 20, min_points: int = 20) -> Rail:
    """Extend a rail with at least ``min_points`` points to the region of interest's border: its near
    end down to row ``bottom`` and its far end up to row ``roi_top``, each with the slope of the
    ``fit_points`` points at that end (III-B), stopping at the image's sides."""
    pts = rail.points
    if len(pts) < min_points:
        return rail
    a, b = _fit_end(pts, fit_points)
    near_rows = np.arange(np.floor(pts[0, 1]) + 1, bottom + 1, dtype=np.float64)
    near = np.stack([a * near_rows + b, near_rows], axis=1)[::-1]
    a, b = _fit_end(pts[::-1], fit_points)
    far_rows = np.arange(np.ceil(pts[-1, 1]) - 1, roi_top - 1, -1, dtype=np.float64)
    far = np.stack([a * far_rows + b, far_rows], axis=1)
    inside = lambda p: p[(p[:, 0] >= 0) & (p[:, 0] <= width - 1)]  # noqa: E731
    near, far = inside(near), inside(far)
    return Rail(np.concatenate([near, pts, far]) if len(near) or len(far) else pts)


@dataclasses.dataclass(frozen=True)
class Stage2Settings:
    roi_top: float = 0.5  # share of the height above which nothing is analysed (III-B: the bottom half)
    dbscan_eps: float = 3.0
    dbscan_min_samples: int = 3
    join_max_dx: float = 12.0
    join_max_gap: float = 60.0
    min_rail_points: int = 20
    patch_max: int = 20
    patch_min: int = 14
    patch_step: int = 2
    shrink_every: int = 4
    max_patches: int = 32
    between_rails: bool = True
    patch_overlap: bool = False  # also a patch halfway between each two neighbours (and between the rails at its row)
    max_gauge_patches: int = 12  # two rails at most this many patch sides apart form a track
    # Pieces this short are still traced, to be joined: an obstacle standing on a rail cuts it into a
    # piece below and a piece beyond it, often shorter than 8 points at a working height of 128.
    # Rails shorter than ``min_rail_points`` after joining are dropped all the same.
    min_piece_points: int = 3

    def roi_row(self, height: int) -> int:
        """The first row of the region of interest in an image ``height`` rows high."""
        return int(round(self.roi_top * height))


def rails_from_mask(mask: np.ndarray, settings: Stage2Settings = Stage2Settings()) -> list[Rail]:
    """Steps 1-4: (H, W) bool rail mask -> rails inside the region of interest, near end first."""
    height, width = mask.shape
    top = settings.roi_row(height)
    roi = np.zeros_like(mask, dtype=bool)
    roi[top:] = mask[top:]
    rails: list[Rail] = []
    for points in cluster(thin(roi), settings.dbscan_eps, settings.dbscan_min_samples):
        rails.extend(trace(points, max_jump=settings.dbscan_eps, min_points=settings.min_piece_points))
    rails = join(rails, settings.join_max_dx, settings.join_max_gap)
    return [extend(r, top, height - 1, width, 20, settings.min_rail_points) for r in rails if len(r.points) >= settings.min_rail_points]


def patches_from_rails(rails: list[Rail], settings: Stage2Settings = Stage2Settings(), top: int = 0) -> list[Patch]:
    """Step 5: the eq. 3 patches along every rail (with ``patch_overlap`` also one halfway between each
    two neighbours, so an object on the border of two is whole in one), and with ``between_rails`` the same-sized patches
    filling the track between a rail and its neighbour to the right (the paper's section V: the
    patches "can be adjusted to detect anomalies on sleepers as well, utilizing the symmetry in
    the design of rail tracks"), so obstacles between the rails are seen too. Every square lies at or
    below row ``top``, the region of interest's upper border."""
    sides = patch_sides(settings.max_patches, settings.patch_max, settings.patch_min, settings.patch_step, settings.shrink_every)
    out = []
    for k, rail in enumerate(rails):
        centres = patch_centres(rail, sides)
        for p, (x, y, side) in enumerate(centres):
            out.append(Patch(x, y, side, k, p))
        if settings.patch_overlap:
            for p, ((x0, y0, side), (x1, y1, _)) in enumerate(zip(centres, centres[1:])):
                out.append(Patch((x0 + x1) / 2, (y0 + y1) / 2, side, k, p, half_step=True))
    if settings.between_rails and len(rails) > 1:
        out.extend(_between(out, rails, settings))
    # Nothing above the region of interest is analysed: a patch at its border whose square would reach
    # above row ``top`` is moved down to lie inside it, as boxes are kept inside the image.
    return [p if p.y - p.side / 2 >= top else dataclasses.replace(p, y=top + p.side / 2) for p in out]


def _x_at_row(rail: Rail, y: float) -> float | None:
    near = np.abs(rail.points[:, 1] - y)
    i = int(np.argmin(near))
    return float(rail.points[i, 0]) if near[i] <= 1.0 else None


def _between(on_rails: list[Patch], rails: list[Rail], settings: Stage2Settings) -> list[Patch]:
    out = []
    for patch in on_rails:
        gaps = []
        for k, other in enumerate(rails):
            x = _x_at_row(other, patch.y) if k != patch.rail else None
            if x is not None and x > patch.x:
                gaps.append(x - patch.x)
        if not gaps:
            continue
        gap = min(gaps)
        if not 1.5 * patch.side <= gap <= settings.max_gauge_patches * patch.side:
            continue
        count = int(gap // patch.side) - 1  # squares that fit strictly between the two rail patches
        for j in range(count):
            x = patch.x + (j + 1) * gap / (count + 1)
            out.append(Patch(x, patch.y, patch.side, patch.rail, patch.index, between=True, half_step=patch.half_step))
    return out
