"""A seeded procedural open-vocabulary world: shapes of many colours on textured backgrounds, with label maps.

Every class is a colour–shape pair ("red star") plus "background". A `World` splits the pairs into seen ones,
which may appear in training data, and held-out ones, which appear only in validation scenes, so that a model
trained on the seen pairs is tested on names it never trained on. (The default build holds pairs out of SAN's
training; CLIP is pre-trained on `World(held_out=())`, the whole world, as CLIP's web data covers the classes SAN
is tested on.)

Scene `i` of a split is drawn from its own generator, seeded by (seed, split, i), so any scene can be re-drawn
alone and in any order. A scene is a description in units of the image side (`Scene`); `render` rasterises it at
any size with supersampling (2×2 by default), so the demo's large sample image and a 128-pixel training image show the same
scene. Only numpy is needed.
"""
import math
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 165, 55),
    "blue": (40, 75, 215),
    "yellow": (240, 215, 40),
    "purple": (135, 50, 175),
    "orange": (245, 135, 25),
    "white": (245, 245, 245),
    "black": (22, 22, 22),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
BACKGROUND = "background"
IGNORE = 255
# Held out by default: one pair per colour, each shape at least once, so that every colour and every shape is still
# seen in other pairs and a held-out name is a new combination of known words.
DEFAULT_HELD_OUT = (
    ("red", "star"), ("green", "ring"), ("blue", "triangle"), ("yellow", "cross"),
    ("purple", "square"), ("orange", "circle"), ("white", "triangle"), ("black", "star"),
)
RADIUS = (0.13, 0.28)  # circumscribed radius of an object, in units of the image side, drawn uniformly
MAX_OBJECTS = 4  # objects drawn per scene: 1 to this many, fewer when they do not fit
SPLITS = {"clip": 1, "train": 2, "val": 3, "sample": 4}
FILLS = ("solid", "striped", "dotted", "shaded")
PATTERNS = ("flat", "gradient", "checker", "stripes", "noise")


@dataclass
class ShapeObject:
    colour: str
    shape: str
    x: float  # centre, in units of the image side
    y: float
    radius: float  # circumscribed radius, in units of the image side
    angle: float  # rotation in radians
    rgb: Tuple[float, float, float]  # the drawn colour: the named colour with brightness and tint jitter
    fill: str  # one of FILLS
    fill_angle: float  # direction of stripes / shading
    fill_period: float  # stripe or dot period, in units of the image side

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    pattern: str  # one of PATTERNS
    bg_rgb: Tuple[Tuple[float, float, float], Tuple[float, float, float]]  # the two background colours
    bg_angle: float
    bg_period: float  # checker / stripe period in units of the image side
    noise_seed: int  # pixel noise, drawn at render time
    objects: List[ShapeObject] = field(default_factory=list)  # in drawing order, later ones on top


class World:
    """The class list and the seen / held-out split of a procedural world."""

    def __init__(self, held_out: Sequence[Tuple[str, str]] = DEFAULT_HELD_OUT,
                 colours: Sequence[str] = tuple(COLOURS), shapes: Sequence[str] = SHAPES,
                 radius: Tuple[float, float] = RADIUS, max_objects: int = MAX_OBJECTS):
        unknown = [pair for pair in held_out if pair[0] not in colours or pair[1] not in shapes]
        if unknown:
            raise ValueError(f"held-out pairs not in the world: {unknown}")
        self.colours = tuple(colours)
        self.radius = radius
        self.max_objects = max_objects
        self.shapes = tuple(shapes)
        self.pairs: List[Tuple[str, str]] = [(c, s) for c in self.colours for s in self.shapes]
        self.held_out_pairs = [pair for pair in self.pairs if pair in set(held_out)]
        self.seen_pairs = [pair for pair in self.pairs if pair not in set(held_out)]
        # Global class ids: pairs colour-major, then background. Label maps use these ids.
        self.class_names = [f"{c} {s}" for c, s in self.pairs] + [BACKGROUND]
        self.background_id = len(self.pairs)
        self.held_out_ids = [self.pairs.index(pair) for pair in self.held_out_pairs]
        self.seen_ids = [self.pairs.index(pair) for pair in self.seen_pairs] + [self.background_id]

    def class_id(self, colour: str, shape: str) -> int:
        return self.pairs.index((colour, shape))

    def words(self) -> List[str]:
        """Every word a caption of this world uses, for learning a BPE vocabulary."""
        return list(self.colours) + list(self.shapes) + [BACKGROUND, "object", "shape"]

    # -- scenes --------------------------------------------------------------------------------------------------

    def rng(self, seed: int, split: str, index: int) -> np.random.Generator:
        return np.random.default_rng([seed, SPLITS[split], index])

    def scene(self, seed: int, split: str, index: int, held_out_share: float = 0.0,
              num_objects: Optional[int] = None) -> Scene:
        """Scene `index` of `split`. Training splits ('clip', 'train') never contain held-out pairs; 'val' and
        'sample' draw each object from the held-out pairs with probability held_out_share, else from the seen ones.
        """
        rng = self.rng(seed, split, index)
        training = split in ("clip", "train")
        if training and held_out_share:
            raise ValueError("held_out_share must be 0 for the training splits 'clip' and 'train'")
        scene = random_background(rng)
        count = int(rng.integers(1, self.max_objects + 1)) if num_objects is None else num_objects
        for _ in range(count):
            pool = self.held_out_pairs if (self.held_out_pairs and rng.random() < held_out_share) else self.seen_pairs
            colour, shape = pool[int(rng.integers(len(pool)))]
            placed = place_object(rng, colour, shape, scene.objects, self.radius)
            if placed is not None:
                scene.objects.append(placed)
        return scene

    def render(self, scene: Scene, size: int) -> Tuple[np.ndarray, np.ndarray]:
        return render(scene, size, [self.class_id(o.colour, o.shape) for o in scene.objects], self.background_id)


# -- drawing ---------------------------------------------------------------------------------------------------------

def _muted_colour(rng: np.random.Generator) -> Tuple[float, float, float]:
    """A low-saturation colour of middle brightness, never confusable with the named colours."""
    grey = rng.uniform(75, 185)
    tint = rng.normal(0, 1, 3)
    tint = tint / (np.linalg.norm(tint) + 1e-6) * rng.uniform(0, 22)
    return tuple(float(v) for v in np.clip(grey + tint, 0, 255))


def random_background(rng: np.random.Generator) -> Scene:
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    return Scene(pattern=pattern, bg_rgb=(_muted_colour(rng), _muted_colour(rng)),
                 bg_angle=float(rng.uniform(0, math.pi)), bg_period=float(rng.uniform(0.05, 0.2)),
                 noise_seed=int(rng.integers(2 ** 31)))


def place_object(rng: np.random.Generator, colour: str, shape: str, others: Sequence[ShapeObject],
                 radius_range: Tuple[float, float] = RADIUS) -> Optional[ShapeObject]:
    """A randomly posed object that overlaps the others only a little, or None after 30 tries."""
    radius = float(rng.uniform(*radius_range))
    for _ in range(30):
        x, y = (float(v) for v in rng.uniform(radius * 0.6, 1 - radius * 0.6, 2))
        if all(math.hypot(x - o.x, y - o.y) >= 0.8 * (radius + o.radius) for o in others):
            break
    else:
        return None
    base = np.array(COLOURS[colour], dtype=np.float64)
    rgb = np.clip(base * rng.uniform(0.88, 1.08) + rng.normal(0, 8, 3), 0, 255)
    return ShapeObject(colour=colour, shape=shape, x=x, y=y, radius=radius,
                       angle=float(rng.uniform(0, 2 * math.pi)), rgb=tuple(float(v) for v in rgb),
                       fill=FILLS[int(rng.choice(len(FILLS), p=[0.55, 0.15, 0.15, 0.15]))],
                       fill_angle=float(rng.uniform(0, math.pi)), fill_period=float(rng.uniform(0.025, 0.05)))


def _star_polygon(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


STAR = _star_polygon()


def _inside_polygon(u: np.ndarray, v: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Points (u, v) in the object's frame, in units of its radius, that lie inside `shape`."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if shape == "triangle":
        inside = np.ones(u.shape, dtype=bool)
        for k in range(3):
            a = math.pi / 2 + 2 * math.pi * k / 3
            inside &= u * math.cos(a) + v * math.sin(a) <= 0.55
        return inside
    if shape == "star":
        return _inside_polygon(u, v, STAR)
    if shape == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.55 ** 2)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    raise ValueError(f"unknown shape {shape!r}; expected one of: {', '.join(SHAPES)}")


def _background(scene: Scene, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    c0, c1 = (np.array(c, dtype=np.float32) for c in scene.bg_rgb)
    along = px * math.cos(scene.bg_angle) + py * math.sin(scene.bg_angle)
    if scene.pattern == "flat":
        t = np.zeros_like(px)
    elif scene.pattern == "gradient":
        t = np.clip(along / 1.5 + 0.5, 0, 1)
    elif scene.pattern == "checker":
        t = ((np.floor(px / scene.bg_period) + np.floor(py / scene.bg_period)) % 2).astype(np.float32)
    elif scene.pattern == "stripes":
        t = (np.floor(along / scene.bg_period) % 2).astype(np.float32)
    else:  # noise: a few low-frequency waves
        rng = np.random.default_rng(scene.noise_seed)
        t = np.zeros_like(px)
        for _ in range(4):
            fx, fy = rng.uniform(-9, 9, 2)
            t += np.sin(fx * px + fy * py + rng.uniform(0, 2 * math.pi))
        t = np.clip(t / 4 + 0.5, 0, 1)
    return c0 + t[..., None] * (c1 - c0)


def _fill(obj: ShapeObject, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    rgb = np.array(obj.rgb, dtype=np.float32)
    if obj.fill == "solid":
        return np.broadcast_to(rgb, px.shape + (3,))
    along = (px - obj.x) * math.cos(obj.fill_angle) + (py - obj.y) * math.sin(obj.fill_angle)
    if obj.fill == "striped":
        t = (np.floor(along / obj.fill_period) % 2)[..., None]
        return rgb * (1 - 0.28 * t)
    if obj.fill == "dotted":
        gx = (px - obj.x) / obj.fill_period
        gy = (py - obj.y) / obj.fill_period
        d2 = (gx - np.round(gx)) ** 2 + (gy - np.round(gy)) ** 2
        return rgb * (1 - 0.3 * (d2 < 0.09)[..., None])
    t = np.clip(along / (2 * obj.radius) + 0.5, 0, 1)[..., None]  # shaded: a soft light-to-dark ramp
    return rgb * (1.1 - 0.25 * t)


def render(scene: Scene, size: int, class_ids: Sequence[int], background_id: int,
           supersample: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """(image uint8 (size, size, 3), labels uint8 (size, size)) for `scene`.

    Each pixel is the mean of supersample² sub-pixel samples; its label is the class covering most of them (the
    top-most on ties), so labels follow the drawn, anti-aliased shapes.
    """
    s = supersample
    coords = (np.arange(size * s, dtype=np.float32) + 0.5) / (size * s)
    py, px = np.meshgrid(coords, coords, indexing="ij")
    if scene.pattern in ("checker", "stripes"):
        image = _background(scene, px, py)
    else:  # smooth patterns: once per pixel, then repeated over its sub-pixels
        image = _background(scene, px[s // 2::s, s // 2::s], py[s // 2::s, s // 2::s])
        image = np.repeat(np.repeat(image, s, axis=0), s, axis=1)
    layer = np.full(px.shape, -1, dtype=np.int16)  # -1 background, k object k
    for k, obj in enumerate(scene.objects):
        # Only the object's bounding box is evaluated.
        reach = 1.05 * obj.radius  # every shape lies within its radius; a margin for rounding
        lo = np.clip(np.floor((np.array([obj.y, obj.x]) - reach) * size * s).astype(int), 0, size * s)
        hi = np.clip(np.ceil((np.array([obj.y, obj.x]) + reach) * size * s).astype(int) + 1, 0, size * s)
        if (hi <= lo).any():
            continue
        sy, sx = slice(lo[0], hi[0]), slice(lo[1], hi[1])
        dx, dy = (px[sy, sx] - obj.x) / obj.radius, (py[sy, sx] - obj.y) / obj.radius
        ca, sa = math.cos(obj.angle), math.sin(obj.angle)
        inside = shape_mask(obj.shape, ca * dx + sa * dy, -sa * dx + ca * dy)
        image[sy, sx] = np.where(inside[..., None], _fill(obj, px[sy, sx], py[sy, sx]), image[sy, sx])
        layer[sy, sx] = np.where(inside, k, layer[sy, sx])
    offsets = [(a, b) for a in range(s) for b in range(s)]
    image = sum(image[a::s, b::s] for a, b in offsets) / (s * s)
    image = image + 4.0 * np.random.default_rng(scene.noise_seed).standard_normal((size, size, 3), dtype=np.float32)
    # Sub-pixel count of each layer per pixel, top-most layer first so that argmax gives ties to it.
    layers = np.arange(len(scene.objects) - 1, -2, -1, dtype=np.int16)  # top-most first, background last
    counts = np.stack([sum((layer[a::s, b::s] == k) for a, b in offsets) for k in layers], axis=-1)
    top = layers[counts.argmax(-1)]
    ids = np.array(list(class_ids) + [background_id], dtype=np.uint8)  # index -1 → background
    labels = ids[top]
    return np.clip(np.round(image), 0, 255).astype(np.uint8), labels


# -- captions --------------------------------------------------------------------------------------------------------

def describe(colour: Optional[str], shape: Optional[str]) -> str:
    """Caption noun phrase for a region: 'red star', 'red object' (colour only) or 'star' (shape only)."""
    if colour and shape:
        return f"{colour} {shape}"
    if colour:
        return f"{colour} object"
    if shape:
        return shape
    return BACKGROUND


# -- PNG -------------------------------------------------------------------------------------------------------------

def write_png(path, image: np.ndarray):
    """A plain 8-bit RGB (H, W, 3) or grey (H, W) PNG, without any imaging library; byte-identical for one image."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, colour_type, 0, 0, 0])
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)
