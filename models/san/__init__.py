"""SAN (Side Adapter Network, CVPR 2023) with the OpenAI CLIP towers it is built on."""
from .config import SanCfg, load_preset, PRESETS
from .model import SAN, SanSegmenter

__all__ = ["SAN", "SanCfg", "SanSegmenter", "PRESETS", "load_preset"]
