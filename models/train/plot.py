"""The loss curve of a run as a PNG: each loss term's moving average against the step, drawn with Pillow."""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from PIL import Image, ImageDraw

COLOURS = [(0, 0, 0), (31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
RAW_COLOUR = (200, 200, 200)
GRID_COLOUR = (230, 230, 230)


def smooth(values: Sequence[float], window: int) -> List[float]:
    """Trailing moving average over up to `window` values."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _text(draw: ImageDraw.ImageDraw, xy: Tuple[float, float], text: str, anchor: str):
    """Text placed by a two-letter anchor (l/m/r, t/m/b), which Pillow's default bitmap font does not honour itself."""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text)
    x = xy[0] - {"l": 0, "m": (x1 - x0) / 2, "r": x1 - x0}[anchor[0]]
    y = xy[1] - {"t": 0, "m": (y1 - y0) / 2, "b": y1 - y0}[anchor[1]]
    draw.text((x, y), text, fill=(0, 0, 0))


def plot_losses(path: Union[str, Path], steps: Sequence[int], series: Dict[str, Sequence[float]],
                title: str = "training loss", size: Tuple[int, int] = (900, 500), window: int = 0):
    """Writes a line chart of each named series against steps: the first series (the total) raw in light grey
    under its moving average in black, the others as moving averages in colour. window 0 picks ~1/20 of the run.
    The y axis starts at 0 and ends above the 99th percentile of the raw total, so early spikes do not flatten it.
    """
    if not steps:
        return
    window = window or max(1, len(steps) // 20)
    smoothed = {name: smooth(list(values), window) for name, values in series.items()}
    first = next(iter(series))
    raw = sorted(series[first])
    y_max = max(raw[min(len(raw) - 1, int(0.99 * len(raw)))], max(max(v) for v in smoothed.values()), 1e-8) * 1.05
    x_max = max(max(steps), 1)
    width, height = size
    left, right, top, bottom = 70, 20, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def at(step: float, value: float) -> Tuple[float, float]:
        return left + step / x_max * plot_w, top + plot_h * (1 - min(max(value / y_max, 0.0), 1.0))

    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for k in range(6):
        y, x = top + plot_h * (1 - k / 5), left + plot_w * k / 5
        draw.line([(left, y), (left + plot_w, y)], fill=GRID_COLOUR)
        draw.line([(x, top), (x, top + plot_h)], fill=GRID_COLOUR)
        _text(draw, (left - 8, y), f"{y_max * k / 5:.3g}", "rm")
        _text(draw, (x, top + plot_h + 6), str(round(x_max * k / 5)), "mt")
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline=(0, 0, 0))
    _text(draw, (left + plot_w / 2, height - 14), "step", "mm")
    _text(draw, (left, top / 2), f"{title} (moving average over {window} steps)", "lm")
    if len(steps) > 1:
        draw.line([at(s, v) for s, v in zip(steps, series[first])], fill=RAW_COLOUR)
    for k, (name, values) in enumerate(smoothed.items()):
        colour = COLOURS[k % len(COLOURS)]
        if len(steps) > 1:
            draw.line([at(s, v) for s, v in zip(steps, values)], fill=colour, width=2)
        legend_y = top + 12 + 16 * k
        draw.line([(left + plot_w - 150, legend_y), (left + plot_w - 125, legend_y)], fill=colour, width=2)
        _text(draw, (left + plot_w - 118, legend_y), name, "lm")
    image.save(str(path), format="PNG")
