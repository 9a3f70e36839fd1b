"""Synthetic rail scenes with rail masks and obstacle masks (issue 13).

No real rail data can be had here (the seed paper trains on RailSem19 and tests
on a harbour locomotive's video, rail-two-stage-anomaly.txt section IV-A), so
scenes are rendered from a pin-hole camera over a flat ground plane:

* A pixel ``(x, y)`` below the horizon ``y_h`` sees the ground at depth
  ``z = f * h / (y - y_h)`` and lateral position ``x_w = (x - c_x) * z / f``
  (focal length ``f``, camera height ``h``). Every layer (ground texture,
  ballast bed, sleepers, rails) is evaluated in these world coordinates for all
  pixels at once, so the perspective is exact and rendering is vectorised.
* A track's centre line is ``c(z) = x_0 + yaw * z + k * z^2`` (straight or
  curved); rails lie at ``c(z) +- gauge / 2``. A switch adds a diverging track
  ``c(z) + s * (z - z_s)^2`` beyond ``z_s``; a neighbouring parallel track may
  appear beside it.
* Rails and sleepers are drawn with their exact pixel coverage (anti-aliased);
  the rail mask is where a rail covers at least half a pixel and no obstacle
  hides it, so mask pixels are always dominated by rail colour.
* Variation: camera height and pitch (horizon row) jitter, focal length,
  ground (ballast, grass, concrete with embedded rails, dirt), wooden or
  concrete sleepers, light level and colour, sun shadows, fog, rain, sensor
  noise.
* Obstacles (the paper's "dirt, stones, tree leaves, coal", section I, and its
  bag and notebook, section IV-C) stand on the track between or on the rails:
  ellipses, boxes and irregular polygons of random size and colour, shaded;
  their masks are exact (drawn only where the mask is set).

Every image is drawn from its own generator seeded by ``(seed, normal/anomalous,
index)``: the same arguments give identical images, and a sample does not
change when more are requested.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from ml.base import Sample

GROUNDS = ("ballast", "grass", "concrete", "dirt")
GAUGE = 1.435  # standard gauge, metres between the rails' inner edges
RAIL_WIDTH = 0.075  # rail head, metres
RAIL_CLASS = "rail"


@dataclasses.dataclass
class Camera:
    width: int
    height: int
    focal: float  # pixels
    horizon: float  # row of the horizon (pitch)
    height_m: float  # camera height above the rails
    centre_x: float

    def ground(self):
        """Per pixel of the ground rows: depth z (metres), lateral x_w (metres), metres per pixel.

        Arrays are (R, W) for the R rows below the horizon; the first row index is returned too.
        """
        first = int(np.floor(self.horizon)) + 1
        ys = np.arange(first, self.height, dtype=np.float32) + 0.5
        xs = np.arange(self.width, dtype=np.float32) + 0.5
        z = (self.focal * self.height_m / (ys - self.horizon))[:, None]
        xw = (xs[None, :] - self.centre_x) * z / self.focal
        return first, z, xw, z / self.focal


@dataclasses.dataclass
class Track:
    x0: float
    yaw: float
    curve: float
    start: float = 0.0  # depth where the track begins (a switch's branch)
    bend: float = 0.0  # extra quadratic divergence beyond ``start`` (a switch's branch)

    def centre(self, z: np.ndarray) -> np.ndarray:
        beyond = np.maximum(z - self.start, 0.0)
        return self.x0 + self.yaw * z + self.curve * z**2 + self.bend * beyond**2


def generate_rail(
    n_normal: int,
    n_anomalous: int,
    width: int = 512,
    height: int = 256,
    seed: int = 0,
) -> list[Sample]:
    """``n_normal`` scenes without obstacles (label 0, empty mask) followed by
    ``n_anomalous`` scenes with one or two obstacles on the track (label 1).

    Images are (height, width, 3) uint8 RGB; ``mask`` is the obstacle mask and
    ``class_masks["rail"]`` the rail mask, both (height, width) uint8 0/255.
    Names are ``good_0000`` ... and ``obstacle_0000`` ....
    """
    if width < 32 or height < 32 or seed < 0 or n_normal < 0 or n_anomalous < 0:
        raise ValueError("width and height must be >= 32 and seed and counts >= 0")
    samples = []
    for i in range(n_normal):
        image, rail, obstacle = render_scene(np.random.default_rng([seed, 0, i]), width, height, obstacles=0)
        samples.append(Sample(image, obstacle, 0, f"good_{i:04d}", class_masks={RAIL_CLASS: rail}))
    for i in range(n_anomalous):
        rng = np.random.default_rng([seed, 1, i])
        image, rail, obstacle = render_scene(rng, width, height, obstacles=1 + int(rng.random() < 0.25))
        samples.append(Sample(image, obstacle, 1, f"obstacle_{i:04d}", class_masks={RAIL_CLASS: rail}))
    return samples


def render_scene(rng: np.random.Generator, width: int, height: int, obstacles: int = 0):
    """One scene: ``(image (H, W, 3) uint8, rail mask (H, W) uint8 0/255, obstacle mask (H, W) uint8 0/255)``."""
    scale = width / 512.0
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731  (python floats keep the arrays float32)
    camera = Camera(
        width=width,
        height=height,
        focal=width * u(0.85, 1.15),
        horizon=height * u(0.30, 0.42),
        height_m=u(2.0, 3.2),
        centre_x=width / 2 + u(-0.04, 0.04) * width,
    )
    curved = rng.random() < 0.5
    main = Track(x0=u(-0.5, 0.5), yaw=u(-0.04, 0.04), curve=u(-0.0015, 0.0015) if curved else 0.0)
    tracks = [main]
    layout = rng.random()
    if layout < 0.3:  # a switch: a branch leaves the main track
        side = 1.0 if rng.random() < 0.5 else -1.0
        tracks.append(Track(main.x0, main.yaw, main.curve, start=u(10, 25), bend=side * u(0.004, 0.012)))
    elif layout < 0.5:  # a neighbouring parallel track
        side = 1.0 if rng.random() < 0.5 else -1.0
        tracks.append(Track(main.x0 + side * u(4.0, 5.0), main.yaw, main.curve))

    first, z, xw, metres_per_px = camera.ground()
    ground_kind = GROUNDS[int(rng.integers(len(GROUNDS)))]
    image = np.empty((height, width, 3), np.float32)
    image[:first] = _sky(rng, first, width)
    ground = _ground(rng, ground_kind, z, xw, metres_per_px)
    embedded = ground_kind == "concrete" and rng.random() < 0.5  # rails set in concrete: no sleepers, no ballast
    rail_cover = np.zeros(z.shape, np.float32)
    for track in tracks:
        c = track.centre(z)
        visible = (z >= track.start).astype(np.float32)
        if not embedded:
            bed = np.clip((1.8 - np.abs(xw - c)) / np.maximum(metres_per_px, 1e-3), 0, 1) * visible
            ballast = _ballast(rng, z, xw, metres_per_px, track.x0)
            ground = ground * (1 - bed[..., None]) + ballast * bed[..., None]
            sleeper = _sleeper_cover(z, camera, rng.uniform(0.55, 0.65), rng.uniform(0.2, 0.28), rng.uniform(0, 1))
            sleeper = sleeper * _interval_cover(xw, c, 2.6, metres_per_px) * visible
            wood = rng.random() < 0.5
            colour = np.asarray((0.33, 0.24, 0.17) if wood else (0.58, 0.57, 0.54), np.float32) * rng.uniform(0.8, 1.1)
            ground = ground * (1 - sleeper[..., None]) + colour * sleeper[..., None]
        for side in (-1.0, 1.0):
            centre = c + side * (GAUGE + RAIL_WIDTH) / 2
            cover = _interval_cover(xw, centre, RAIL_WIDTH, metres_per_px) * visible
            rail_cover = np.maximum(rail_cover, cover)
            # The rail's side casts a dark rusty edge just outside its head.
            edge = _interval_cover(xw, centre + side * RAIL_WIDTH * 0.9, RAIL_WIDTH * 0.8, metres_per_px) * visible
            ground = ground * (1 - 0.55 * edge[..., None]) + np.float32([0.25, 0.15, 0.1]) * 0.55 * edge[..., None]
    shine = rng.uniform(0.7, 0.92)
    rail_colour = np.float32([shine, shine, shine * rng.uniform(0.95, 1.05)])
    ground = ground * (1 - rail_cover[..., None]) + rail_colour * rail_cover[..., None]
    image[first:] = ground
    rail_mask = np.zeros((height, width), bool)
    rail_mask[first:] = rail_cover >= 0.5

    obstacle_mask = np.zeros((height, width), bool)
    for _ in range(obstacles):
        obstacle_mask |= _obstacle(rng, image, camera, main, scale)
    rail_mask &= ~obstacle_mask

    _lighting(rng, image, camera, first, z, xw)
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(0.005, 0.025))
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, rail_mask.astype(np.uint8) * 255, obstacle_mask.astype(np.uint8) * 255


# --- coverage of intervals (anti-aliasing) ------------------------------------------------------

def _interval_cover(xw: np.ndarray, centre: np.ndarray, width: float, metres_per_px: np.ndarray) -> np.ndarray:
    """Share of each pixel's lateral extent ``[x_w - p/2, x_w + p/2]`` covered by ``centre +- width/2``."""
    half = metres_per_px / 2
    overlap = np.minimum(xw + half, centre + width / 2) - np.maximum(xw - half, centre - width / 2)
    return np.clip(overlap / metres_per_px, 0.0, 1.0).astype(np.float32)


def _sleeper_cover(z: np.ndarray, camera: Camera, spacing: float, depth: float, phase: float) -> np.ndarray:
    """Share of each row's depth range covered by sleepers every ``spacing`` m, ``depth`` m wide (exact, per row)."""
    zc = z[:, 0].astype(np.float64)
    dy = camera.focal * camera.height_m / zc
    near, far = camera.focal * camera.height_m / (dy + 0.5), camera.focal * camera.height_m / np.maximum(dy - 0.5, 1e-3)

    def cumulative(d):
        d = d / spacing + phase
        return np.floor(d) * depth + np.minimum((d - np.floor(d)) * spacing, depth)

    share = (cumulative(far) - cumulative(near)) / np.maximum(far - near, 1e-9)
    return np.clip(share, 0, 1).astype(np.float32)[:, None]


# --- textures ----------------------------------------------------------------------------------

def _noise(rng: np.random.Generator, size: int, octaves=((1, 0.5), (4, 0.3), (16, 0.2))) -> np.ndarray:
    """(size, size) tileable-enough multi-scale noise, zero mean, unit-ish spread."""
    out = np.zeros((size, size), np.float32)
    for cells, weight in octaves:
        n = max(size // cells, 2)
        layer = rng.standard_normal((n, n)).astype(np.float32)
        out += weight * cv2.resize(layer, (size, size), interpolation=cv2.INTER_CUBIC)
    return out / (out.std() + 1e-6)


def _sample_world(texture: np.ndarray, xw: np.ndarray, z: np.ndarray, metres_per_texel: float, metres_per_px: np.ndarray) -> np.ndarray:
    """A texture laid on the ground (tiled), seen in perspective; far rows fade to the mean (no aliasing)."""
    size = texture.shape[0]
    u = (xw / metres_per_texel) % size
    v = np.broadcast_to((z * 4.0 / metres_per_texel) % size, u.shape)  # the ground is foreshortened: stretch along depth
    sampled = cv2.remap(texture, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    fade = np.clip(1.5 - metres_per_px / metres_per_texel / 4.0, 0.0, 1.0)
    fade = np.broadcast_to(fade, u.shape)
    return sampled * fade


def _ground(rng: np.random.Generator, kind: str, z, xw, metres_per_px) -> np.ndarray:
    """(R, W, 3) ground colour in [0, 1]."""
    base = {
        "ballast": (0.45, 0.43, 0.40),
        "grass": (0.24, 0.38, 0.14),
        "concrete": (0.62, 0.61, 0.58),
        "dirt": (0.45, 0.35, 0.24),
    }[kind]
    contrast = {"ballast": 0.22, "grass": 0.25, "concrete": 0.06, "dirt": 0.15}[kind]
    texel = {"ballast": 0.05, "grass": 0.03, "concrete": 0.1, "dirt": 0.08}[kind]
    value = _sample_world(_noise(rng, 128), xw, z, texel, metres_per_px)
    colour = np.asarray(base, np.float32) * rng.uniform(0.8, 1.15, 3).astype(np.float32)
    return colour * (1.0 + contrast * value[..., None])


def _ballast(rng: np.random.Generator, z, xw, metres_per_px, offset: float) -> np.ndarray:
    stones = _noise(rng, 128, ((2, 0.4), (8, 0.6)))
    value = _sample_world(stones, xw - offset, z, 0.03, metres_per_px)
    grey = rng.uniform(0.38, 0.55)
    colour = np.float32([grey, grey * 0.97, grey * 0.92])
    return colour * (1.0 + 0.3 * value[..., None])


def _sky(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    top = np.asarray(rng.uniform([0.35, 0.5, 0.7], [0.6, 0.7, 0.95]), np.float32)
    low = np.asarray(rng.uniform([0.7, 0.72, 0.75], [0.9, 0.9, 0.92]), np.float32)
    t = np.linspace(0, 1, max(rows, 1), dtype=np.float32)[:, None, None]
    sky = top * (1 - t) + low * t
    sky = np.broadcast_to(sky, (rows, width, 3)).copy()
    # A band of trees / buildings at the horizon.
    band = max(rows // 4, 1)
    skyline = cv2.resize(rng.uniform(0, 1, (1, max(width // 16, 2))).astype(np.float32), (width, 1), interpolation=cv2.INTER_CUBIC)[0]
    heights = (skyline * band).astype(int)
    rows_idx = np.arange(rows)[:, None]
    hidden = rows_idx >= rows - heights[None, :]
    shade = np.asarray(rng.uniform([0.15, 0.2, 0.1], [0.35, 0.4, 0.3]), np.float32)
    sky[hidden] = shade
    return sky


def _lighting(rng: np.random.Generator, image: np.ndarray, camera: Camera, first: int, z, xw) -> None:
    """Sun shadow, light level and colour, fog, rain; in place on the float image."""
    ground = image[first:]
    if rng.random() < 0.35:  # a shadow of a building or a mast falling across the track
        a, b = rng.uniform(-1, 1), rng.uniform(-6, 6)
        side = rng.choice([-1.0, 1.0])
        inside = (side * (xw - (a * z + b)) > 0) & (z < rng.uniform(15, 80))
        ground[inside] *= rng.uniform(0.45, 0.7)
    if rng.random() < 0.3:  # fog: blend towards grey with depth
        distance = rng.uniform(25, 80)
        veil = (1.0 - np.exp(-z / distance)).astype(np.float32)[..., None]
        fog = np.float32(rng.uniform(0.65, 0.85))
        ground[:] = ground * (1 - veil) + fog * veil
        image[:first] = image[:first] * 0.4 + fog * 0.6
    gain = rng.uniform(0.55, 1.25)
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    image *= gain * tint
    if rng.random() < 0.2:  # rain: thin bright slanted streaks
        streaks = np.zeros(image.shape[:2], np.float32)
        count = int(rng.integers(40, 120) * camera.width / 512)
        starts = rng.uniform([0, 0], [camera.width, camera.height], (count, 2))
        slant = rng.uniform(-0.3, 0.3)
        length = rng.uniform(6, 16, count) * camera.height / 256
        ends = starts + np.stack([slant * length, length], axis=1)
        lines = np.round(np.concatenate([starts, ends], axis=1)).astype(np.int32)
        for x1, y1, x2, y2 in lines:
            cv2.line(streaks, (int(x1), int(y1)), (int(x2), int(y2)), 1.0, 1)
        image += 0.25 * streaks[..., None]


# --- obstacles ---------------------------------------------------------------------------------

def _obstacle(rng: np.random.Generator, image: np.ndarray, camera: Camera, track: Track, scale: float) -> np.ndarray:
    """Paint one obstacle standing on the track into ``image``; returns its (H, W) bool mask."""
    height, width = image.shape[:2]
    bottom = camera.height - 1
    z_near = camera.focal * camera.height_m / (bottom + 0.5 - camera.horizon)
    for _ in range(20):
        z = float(rng.uniform(z_near * 1.1, z_near * 2.6))
        lateral = float(track.centre(np.float64(z))) + float(rng.uniform(-GAUGE / 2 - 0.25, GAUGE / 2 + 0.25))
        size_w = float(rng.uniform(0.25, 1.0))
        size_h = size_w * float(rng.uniform(0.4, 1.2))
        base_y = camera.horizon + camera.focal * camera.height_m / z
        centre_x = camera.centre_x + lateral * camera.focal / z
        w_px = max(size_w * camera.focal / z, 5 * scale)
        h_px = max(size_h * camera.focal / z, 4 * scale)
        if 0 <= centre_x < width and base_y - h_px > camera.horizon:
            break
    mask = np.zeros((height, width), np.uint8)
    shape = rng.integers(3)
    cx, cy = centre_x, base_y - h_px / 2
    if shape == 0:  # a sack, a stone, a heap of coal
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (max(int(w_px / 2), 2), max(int(h_px / 2), 2)), float(rng.uniform(-20, 20)), 0, 360, 1, -1)
    elif shape == 1:  # a box, a notebook
        box = ((float(cx), float(cy)), (float(w_px), float(h_px)), float(rng.uniform(-25, 25)))
        cv2.fillPoly(mask, [np.round(cv2.boxPoints(box)).astype(np.int32)], 1)
    else:  # an irregular piece of debris or a branch
        k = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = rng.uniform(0.5, 1.0, k)
        pts = np.stack([cx + np.cos(angles) * radii * w_px / 2, cy + np.sin(angles) * radii * h_px / 2], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    inside = mask.astype(bool)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(0, 256), rng.integers(25, 256)]]])
    colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0
    ys = np.arange(height, dtype=np.float32)[:, None]
    shade = np.clip(1.15 - 0.5 * (ys - (cy - h_px / 2)) / max(h_px, 1.0), 0.6, 1.2)  # lit from above
    texture = 1.0 + 0.12 * _noise(rng, 64)[np.arange(height)[:, None] % 64, np.arange(width)[None, :] % 64]
    painted = colour[None, None, :] * (shade * texture)[..., None]
    image[inside] = painted[inside]
    # Its shadow on the ground just below it (outside the mask: the mask is the object only).
    shadow = np.zeros((height, width), np.uint8)
    cv2.ellipse(shadow, (int(round(cx)), int(round(base_y))), (max(int(w_px * 0.6), 2), max(int(h_px * 0.12), 1)), 0, 0, 360, 1, -1)
    shadow = shadow.astype(bool) & ~inside
    image[shadow] *= 0.6
    return inside


# --- writing -------------------------------------------------------------------------------------

def write_synthetic_rail(
    root: str | Path,
    n_train: int = 64,
    n_test_normal: int = 16,
    n_test_anomalous: int = 16,
    width: int = 512,
    height: int = 256,
    seed: int = 0,
) -> Path:
    """MVTec AD layout (train/good, test/good, test/obstacle, ground_truth/obstacle) plus the
    rail masks of every image under ``class_masks/rail/<same relative path>``."""
    from ml.formats.mvtec import encode_png, mvtec_image_path, write_mvtec_sample

    root = Path(root)

    def rail_mask(split: str, kind: str, sample: Sample) -> None:
        path = root / "class_masks" / RAIL_CLASS / mvtec_image_path(split, kind, sample.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(sample.class_masks[RAIL_CLASS]))

    for sample in generate_rail(n_train, 0, width, height, seed):
        write_mvtec_sample(root, "train", "good", sample.name, sample.image)
        rail_mask("train", "good", sample)
    # A different seed stream, so no test image repeats a training image.
    for sample in generate_rail(n_test_normal, n_test_anomalous, width, height, seed + 1):
        kind = "good" if sample.label == 0 else "obstacle"
        write_mvtec_sample(root, "test", kind, sample.name, sample.image, sample.mask)
        rail_mask("test", kind, sample)
    return root
