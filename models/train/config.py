"""Training configuration: one dataclass whose fields are the keys of the JSON files in `configs/`.

The defaults are the reference recipe (MendelXu/SAN `configs/Base-coco-stuff-164K-171.yaml` with
`san_clip_vit_res4_coco.yaml`, and `san/config.py`); see docs/training.md.
"""
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..san.config import PRESETS, SanCfg, dataclass_from_dict, load_preset

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TRAIN_PRESETS = ("coco_stuff_vit_b_16", "coco_stuff_vit_l_14_336", "tiny")


@dataclass
class TrainCfg:
    model: Union[str, Dict[str, Any]] = "vit_b_16"  # SAN preset name (models/san/configs) or a whole SanCfg dict
    steps: int = 60000  # optimizer steps (the reference's MAX_ITER)
    batch_size: int = 32  # images per step (the reference: 32, as 4 on each of 8 GPUs)
    seed: int = 0  # seeds weights not loaded from a file, the data order, augmentation and point sampling

    # Optimiser: AdamW with per-parameter weight decay, poly schedule, full-model gradient clipping.
    lr: float = 1e-4  # base learning rate
    weight_decay: float = 1e-4  # for every trainable parameter not named below
    weight_decay_embed: float = 0.0  # for parameters whose own name contains one of no_decay_names
    no_decay_names: List[str] = field(default_factory=lambda: [
        "absolute_pos_embed", "positional_embedding", "pos_embed", "query_embed", "relative_position_bias_table"])
    weight_decay_norm: float = 0.0  # for torch.nn.LayerNorm parameters; SAN's LayerNorm2d keeps weight_decay
    side_lr_multiplier: float = 1.0  # lr factor for side_adapter_network.* (BACKBONE_MULTIPLIER)
    clip_lr_multiplier: float = 1.0  # lr factor for trainable parameters of modules named clip_* (CLIP_MULTIPLIER)
    # Substrings of clip_visual_extractor parameter names left trainable; every other CLIP weight is frozen.
    clip_frozen_exclude: List[str] = field(default_factory=lambda: ["positional_embedding"])
    poly_power: float = 0.9  # lr = base · (1 − step / steps) ^ poly_power, no warm-up
    grad_clip: float = 0.01  # max L2 norm of all gradients together; 0 disables clipping
    amp: bool = True  # float16 autocast and loss scaling on CUDA; CPU always trains in float32

    # Set-prediction loss (Mask2Former's, as SAN uses it).
    class_weight: float = 2.0  # weight of the cross-entropy loss and of the matcher's class cost
    mask_weight: float = 5.0  # weight of the sigmoid BCE mask loss and of the matcher's BCE cost
    dice_weight: float = 5.0  # weight of the dice loss and of the matcher's dice cost
    no_object_weight: float = 0.1  # cross-entropy weight of the background (no-object) class
    num_points: int = 12544  # points per mask for the losses and the matcher (112²)
    oversample_ratio: float = 3.0  # loss points: candidates drawn = num_points · oversample_ratio
    importance_sample_ratio: float = 0.75  # share of loss points taken as the most uncertain candidates
    # Side blocks (1-based) whose outputs are decoded and supervised; None = the last two (7 and 8 for depth 8).
    deep_supervision: Optional[List[int]] = None

    # Augmentation (MaskFormerSemanticDatasetMapper): resize, crop, colour jitter, flip, pad.
    crop_size: int = 640  # square random crop, then padding to this size
    # Short sides to choose from; None = int(crop_size · k / 10) for k = 5..15 (320, 384, ..., 960 for 640).
    short_edges: Optional[List[int]] = None
    max_size: int = 2560  # the long side after resizing is at most this
    color_jitter: bool = True  # SSD colour jitter: brightness, contrast, saturation, hue
    flip: bool = True  # horizontal flip with probability 0.5
    ignore_label: int = 255  # label value that is no class; padding gets it too
    pad_value: int = 128  # image padding value (uint8, before normalisation)
    num_workers: int = 0  # DataLoader worker processes; 0 loads in the training process

    # Bookkeeping.
    checkpoint_period: int = 5000  # steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # periodic checkpoints kept besides model_final.pth; 0 keeps all
    log_period: int = 20  # steps between progress lines and metrics.jsonl records

    def __post_init__(self):
        self.validate()

    def validate(self):
        positive = ("steps", "batch_size", "num_points", "crop_size", "max_size", "checkpoint_period", "log_period")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Expected an integer >= 1 for {name} but received {getattr(self, name)!r}")
        for name in ("lr", "weight_decay", "weight_decay_embed", "weight_decay_norm", "side_lr_multiplier",
                     "clip_lr_multiplier", "grad_clip", "class_weight", "mask_weight", "dice_weight", "poly_power"):
            if getattr(self, name) < 0:
                raise ValueError(f"Expected a number >= 0 for {name} but received {getattr(self, name)!r}")
        if not 0 < self.no_object_weight <= 1:
            raise ValueError(f"Expected a number in (0, 1] for no_object_weight but received {self.no_object_weight!r}")
        if self.oversample_ratio < 1:
            raise ValueError(f"Expected a number >= 1 for oversample_ratio but received {self.oversample_ratio!r}")
        if not 0 <= self.importance_sample_ratio <= 1:
            raise ValueError("Expected a number in [0, 1] for importance_sample_ratio but received "
                             f"{self.importance_sample_ratio!r}")
        if self.short_edges is not None and (not self.short_edges or min(self.short_edges) < 1):
            raise ValueError("Expected a non-empty list of sizes >= 1 for short_edges but received "
                             f"{self.short_edges!r}")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"Expected an integer in [0, 255] for pad_value but received {self.pad_value!r}")
        if self.num_workers < 0 or self.keep_checkpoints < 0:
            raise ValueError("num_workers and keep_checkpoints must be >= 0")
        san = self.san_cfg()
        if self.crop_size % san.size_divisibility:
            # The model pads its input to this multiple; targets must cover the same extent as its mask logits.
            raise ValueError(f"Expected a multiple of the model's size_divisibility ({san.size_divisibility}) for "
                             f"crop_size but received {self.crop_size}")
        depth = san.side_adapter.depth
        if self.deep_supervision is not None:
            blocks = self.deep_supervision
            if not blocks or blocks != sorted(set(blocks)) or blocks[0] < 1 or blocks[-1] != depth:
                raise ValueError(f"Expected increasing side blocks in [1, {depth}] ending with {depth} for "
                                 f"deep_supervision but received {blocks!r}")

    def san_cfg(self) -> SanCfg:
        if isinstance(self.model, str):
            return load_preset(self.model)
        if isinstance(self.model, dict):
            return SanCfg.from_dict(self.model)
        raise ValueError(f"Expected one of: {', '.join(PRESETS)}, or a SanCfg dict for model but received "
                         f"{self.model!r} of type {type(self.model).__name__}")

    def side_layers(self) -> List[int]:
        """The supervised side blocks, the last one (the inference output) last."""
        if self.deep_supervision is not None:
            return list(self.deep_supervision)
        depth = self.san_cfg().side_adapter.depth
        return [depth - 1, depth] if depth > 1 else [depth]

    def train_short_edges(self) -> List[int]:
        if self.short_edges is not None:
            return list(self.short_edges)
        return [int(self.crop_size * k / 10) for k in range(5, 16)]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainCfg":
        return dataclass_from_dict(cls, data)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "TrainCfg":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def load_train_config(name_or_path: Union[str, Path]) -> TrainCfg:
    """A preset name from configs/ (coco_stuff_vit_b_16, coco_stuff_vit_l_14_336, tiny) or a JSON file path."""
    if str(name_or_path) in TRAIN_PRESETS:
        return TrainCfg.from_json(CONFIG_DIR / f"{name_or_path}.json")
    path = Path(name_or_path)
    if not path.exists():
        raise ValueError(f"Training config {path} does not exist (presets: {', '.join(TRAIN_PRESETS)})")
    return TrainCfg.from_json(path)
