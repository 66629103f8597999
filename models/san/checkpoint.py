"""Loading official SAN checkpoints (san_vit_b_16.pth, san_vit_large_14.pth) as they are published.

A checkpoint is detectron2's `{'model': state_dict, ...}`, a `{'state_dict': ...}` container or a bare state dict.
The variant is recognised from a few tensor shapes; loading is strict except for the loss buffer, and any
mismatch is reported as one CheckpointError naming the missing, unexpected and mis-shaped keys.
"""
from pathlib import Path
from typing import Dict, List, Mapping, Tuple, Union

import torch
from torch import Tensor

from .config import PRESETS, SanCfg, load_preset
from .model import SAN

# Training-only buffers of the official checkpoints; inference never reads them.
IGNORED_KEYS = ("criterion.empty_weight",)
# How many keys of each kind an error message lists before "and N more".
LISTED_KEYS = 12


class CheckpointError(ValueError):
    """The file is not a readable SAN checkpoint, or does not match the model built for it."""


def _shape(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


def read_state_dict(path: Union[str, Path]) -> Dict[str, Tensor]:
    """The state dict inside a checkpoint file, whichever of the three containers it uses."""
    try:
        # weights_only: a downloaded file must not run code while it is unpickled.
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist") from None
    except Exception as err:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"Checkpoint {path} cannot be read as a PyTorch file: {err}") from err
    return unwrap_state_dict(obj, str(path))


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> Dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for container in ("model", "state_dict"):
            if isinstance(obj.get(container), Mapping):
                obj = obj[container]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source} holds no state dict (expected {{'model': ...}}, {{'state_dict': ...}} "
                              f"or a mapping of parameter names to tensors)")
    not_tensors = [key for key, value in obj.items() if not isinstance(value, Tensor)]
    if not_tensors:
        raise CheckpointError(f"{source} is not a state dict: {_listing(not_tensors)} are not tensors")
    return {key: value for key, value in obj.items() if key not in IGNORED_KEYS}


def _signature(cfg: SanCfg) -> Dict[str, Tuple[int, ...]]:
    """Shapes that tell the variants apart, derived from the configuration."""
    clip, side, text = cfg.clip_visual, cfg.side_adapter, cfg.text
    return {
        "clip_visual_extractor.conv1.weight": (clip.width, 3, clip.patch_size, clip.patch_size),
        "clip_visual_extractor.positional_embedding": (clip.grid_size ** 2 + 1, clip.width),
        "side_adapter_network.vit_model.pos_embed": (1, side.grid_size ** 2, side.width),
        "ov_classifier.token_embedding.weight": (text.vocab_size, text.width),
    }


def detect_variant(state_dict: Mapping[str, Tensor], source: str = "checkpoint") -> str:
    signatures = {name: _signature(load_preset(name)) for name in PRESETS}
    for name, signature in signatures.items():
        if all(key in state_dict and tuple(state_dict[key].shape) == shape for key, shape in signature.items()):
            return name
    found = ", ".join(f"{key} {_shape(state_dict[key].shape) if key in state_dict else 'missing'}"
                      for key in signatures[PRESETS[0]])
    expected = "; ".join(f"{name}: " + ", ".join(_shape(shape) for shape in signature.values())
                         for name, signature in signatures.items())
    raise CheckpointError(f"{source} matches no SAN variant. It has {found}. Expected, in that order, {expected}")


def _listing(keys: List[str]) -> str:
    shown = ", ".join(keys[:LISTED_KEYS])
    return shown if len(keys) <= LISTED_KEYS else f"{shown} and {len(keys) - LISTED_KEYS} more"


def load_state_dict_strict(model: SAN, state_dict: Mapping[str, Tensor], source: str = "checkpoint"):
    """model.load_state_dict, after checking every name and shape so that one error lists every problem."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    misshaped = [f"{key} ({_shape(state_dict[key].shape)} in the checkpoint, {_shape(value.shape)} in the model)"
                 for key, value in expected.items() if key in state_dict and state_dict[key].shape != value.shape]
    problems = [f"{len(keys)} {kind}: {_listing(keys)}" for kind, keys in (
        ("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if keys]
    if problems:
        raise CheckpointError(f"{source} does not match the model:\n  " + "\n  ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def load_san(path: Union[str, Path], variant: str = "auto") -> Tuple[SAN, str]:
    """Builds the SAN of the checkpoint's variant, or of `variant`, and loads the weights into it."""
    state_dict = read_state_dict(path)
    name = detect_variant(state_dict, str(path)) if variant == "auto" else variant
    model = SAN(load_preset(name))
    load_state_dict_strict(model, state_dict, f"{path} (as {name})")
    return model.eval(), name
