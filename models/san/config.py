"""Configuration of a SAN model: one dataclass per part, presets as JSON files in `configs/` keyed by field name."""
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Type, TypeVar, Union

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PRESETS = ("vit_b_16", "vit_l_14_336", "tiny")

T = TypeVar("T")


def dataclass_from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


@dataclass
class ClipVisionCfg:
    width: int = 768  # transformer width d_model (768 ViT-B, 1024 ViT-L)
    layers: int = 12  # residual blocks of the whole CLIP ViT
    heads: int = 12  # attention heads (width / 64 in OpenAI CLIP); SAN predicts one attention bias per head
    patch_size: int = 16  # conv1 kernel and stride
    image_size: int = 224  # pre-training resolution: positional_embedding holds (image_size / patch_size)^2 + 1 rows
    output_dim: int = 512  # joint image-text embedding size, the columns of `proj`
    feature_last_layer: int = 9  # blocks run by FeatureExtractor; RecWithAttnbiasHead runs the remaining ones
    # Output channels of the stride-2 3×3 convolutions (with BatchNorm and GELU) run before conv1, a convolutional
    # stem; conv1's kernel and stride are then patch_size / 2^len. Empty, as in every CLIP checkpoint, for the
    # plain patch embedding.
    stem_channels: List[int] = field(default_factory=list)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class SideAdapterCfg:
    width: int = 240  # side ViT width
    depth: int = 8  # side ViT blocks
    heads: int = 6  # side ViT attention heads
    mlp_ratio: float = 4.0  # hidden size of the block MLPs relative to width
    patch_size: int = 16  # patch stride; mask logits come out at 1 / patch_size of the padded image
    image_size: int = 640  # resolution its pos_embed was trained at: (image_size / patch_size)^2 rows, no class row
    num_queries: int = 100  # mask queries, also the number of [SOS] tokens in the recognition head
    # (CLIP layer, side layer) pairs: CLIP layer k (0 = after ln_pre, k = after block k) is added to the side
    # tokens after side block s (0 = before the first block). Both columns must increase down the list.
    fusion_map: List[List[int]] = field(default_factory=lambda: [[0, 0], [3, 1], [6, 2], [9, 3]])

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class DecoderCfg:
    embed_channels: int = 256  # query / pixel embedding size whose dot products give masks and attention biases
    mlp_channels: int = 256  # hidden size of the three MLPs
    mlp_num_layers: int = 3  # affine layers per MLP, ReLU between them


@dataclass
class TextCfg:
    width: int = 512  # text transformer width
    heads: int = 8  # text transformer attention heads
    layers: int = 12  # text transformer blocks
    context_length: int = 77  # token positions, CLIP's 77
    vocab_size: int = 49408  # 512 byte tokens + BPE merges + <start_of_text>, <end_of_text>
    output_dim: int = 512  # text_projection columns; equals ClipVisionCfg.output_dim


@dataclass
class SanCfg:
    clip_visual: ClipVisionCfg = field(default_factory=ClipVisionCfg)
    side_adapter: SideAdapterCfg = field(default_factory=SideAdapterCfg)
    decoder: DecoderCfg = field(default_factory=DecoderCfg)
    text: TextCfg = field(default_factory=TextCfg)
    clip_resolution: float = 0.5  # CLIP sees the padded image scaled by this factor (0.5 ViT-B, 0.7 ViT-L)
    size_divisibility: int = 32  # the normalised image is zero-padded (bottom, right) to a multiple of this
    pixel_mean: List[float] = field(default_factory=lambda: [0.48145466, 0.4578275, 0.40821073])  # RGB, 0..1 units
    pixel_std: List[float] = field(default_factory=lambda: [0.26862954, 0.26130258, 0.27577711])  # RGB, 0..1 units
    resize_short_edge: int = 640  # test-time resize done by the caller: shortest edge to this many pixels...
    resize_max_size: int = 2560  # ...unless the longest edge would pass this, then the longest edge to this
    template_set: str = "vild"  # prompt templates for class names, see text.TEMPLATE_SETS

    def __post_init__(self):
        for name, cls in (("clip_visual", ClipVisionCfg), ("side_adapter", SideAdapterCfg),
                          ("decoder", DecoderCfg), ("text", TextCfg)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, dataclass_from_dict(cls, value))
        self.validate()

    def validate(self):
        clip, side = self.clip_visual, self.side_adapter
        if clip.width % clip.heads or side.width % side.heads or self.text.width % self.text.heads:
            raise ValueError("Each width must be a multiple of its heads (clip_visual, side_adapter, text)")
        if not 0 < clip.feature_last_layer < clip.layers:
            raise ValueError(f"clip_visual.feature_last_layer must be in [1, {clip.layers - 1}], "
                             f"got {clip.feature_last_layer}")
        if clip.stem_channels and (clip.patch_size % 2 ** len(clip.stem_channels) or min(clip.stem_channels) < 1):
            raise ValueError(f"clip_visual.stem_channels must be positive, at most log2(patch_size) of them so that "
                             f"2^len divides patch_size ({clip.patch_size}), got {clip.stem_channels}")
        if not side.fusion_map or any(len(pair) != 2 for pair in side.fusion_map):
            raise ValueError("side_adapter.fusion_map must be a non-empty list of [clip_layer, side_layer] pairs")
        clip_layers = [pair[0] for pair in side.fusion_map]
        side_layers = [pair[1] for pair in side.fusion_map]
        if clip_layers != sorted(set(clip_layers)) or side_layers != sorted(set(side_layers)):
            raise ValueError(f"side_adapter.fusion_map must increase in both columns, got {side.fusion_map}")
        if clip_layers[0] < 0 or clip_layers[-1] > clip.feature_last_layer:
            raise ValueError(f"side_adapter.fusion_map CLIP layers must be in [0, {clip.feature_last_layer}]")
        if side_layers[0] < 0 or side_layers[-1] > side.depth:
            raise ValueError(f"side_adapter.fusion_map side layers must be in [0, {side.depth}]")
        if self.size_divisibility % side.patch_size:
            raise ValueError("size_divisibility must be a multiple of side_adapter.patch_size")
        if self.text.output_dim != clip.output_dim:
            raise ValueError(f"text.output_dim ({self.text.output_dim}) must equal clip_visual.output_dim "
                             f"({clip.output_dim})")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3:
            raise ValueError("pixel_mean and pixel_std need one value per RGB channel")

    @property
    def pixel_mean_255(self) -> List[float]:
        """Mean in uint8 units, computed as the reference does (255 * value)."""
        return [255.0 * v for v in self.pixel_mean]

    @property
    def pixel_std_255(self) -> List[float]:
        return [255.0 * v for v in self.pixel_std]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SanCfg":
        return dataclass_from_dict(cls, data)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "SanCfg":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def load_preset(name: str) -> SanCfg:
    if name not in PRESETS:
        raise ValueError(f"Unknown SAN variant {name!r}; expected one of: {', '.join(PRESETS)}")
    return SanCfg.from_json(CONFIG_DIR / f"{name}.json")
