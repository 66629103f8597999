"""Checkpoints of a training run, and the weights a run starts from.

A checkpoint is the official container: {'model': state_dict, 'iteration': steps done} under the official key names
(criterion.empty_weight included), so models.san.checkpoint.load_san and models.export read it like a released
file. The run's state rides along in two keys those loaders ignore, because torch 1.13's weights_only loading
accepts tensors, ints, strings and containers but no Python floats: 'run_state', the JSON text of the plain values
(optimizer hyper-parameters, schedule, loss scaler, train_config, san_config, class_names, variant), and
'run_tensors', the tensors (optimizer moments) that JSON refers to by name.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor

from ..san.checkpoint import CheckpointError, load_state_dict_strict, read_state_dict
from ..san.config import SanCfg
from ..san.model import SAN

LAST_CHECKPOINT = "last_checkpoint"  # detectron2's name: a text file holding the latest checkpoint's file name
FINAL = "model_final.pth"


def checkpoint_name(step: int) -> str:
    return f"model_{step:07d}.pth"


def pack_run_state(state: Mapping[str, Any]) -> Tuple[str, Dict[str, Tensor]]:
    """Plain values and tensors → (JSON text, tensors by name). Tensors become {"tensor": name}; dicts with
    non-string keys (optimizer state is keyed by parameter index) become {"items": [[key, value], ...]}."""
    tensors: Dict[str, Tensor] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, Tensor):
            name = str(len(tensors))
            tensors[name] = value.detach().cpu()
            return {"tensor": name}
        if isinstance(value, Mapping):
            if all(isinstance(key, str) for key in value):
                return {"dict": {key: encode(item) for key, item in value.items()}}
            return {"items": [[key, encode(item)] for key, item in value.items()]}
        if isinstance(value, (list, tuple)):
            return [encode(item) for item in value]
        return value

    return json.dumps(encode(dict(state))), tensors


def unpack_run_state(text: str, tensors: Mapping[str, Tensor]) -> Dict[str, Any]:
    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(item) for item in value]
        if isinstance(value, dict):
            if "tensor" in value:
                return tensors[value["tensor"]]
            if "items" in value:
                return {key: decode(item) for key, item in value["items"]}
            return {key: decode(item) for key, item in value["dict"].items()}
        return value

    return decode(json.loads(text))


def save_checkpoint(out_dir: Path, name: str, model_state: Mapping[str, Tensor], run_state: Dict[str, Any],
                    keep: int = 0) -> Path:
    """Writes out_dir/name atomically, points last_checkpoint at it and keeps only the newest `keep` periodic
    checkpoints (model_NNNNNNN.pth; 0 keeps all; model_final.pth is never removed). run_state must hold
    'iteration'; any other plain values and tensors in it come back from read_checkpoint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = out_dir / f".{name}.tmp"
    text, tensors = pack_run_state(run_state)
    model = {k: v.detach().cpu() for k, v in model_state.items()}
    torch.save({"model": model, "iteration": int(run_state["iteration"]), "run_state": text, "run_tensors": tensors},
               str(tmp))
    os.replace(tmp, path)
    (out_dir / LAST_CHECKPOINT).write_text(name + "\n", encoding="utf-8")
    if keep > 0:
        periodic = sorted(p for p in out_dir.glob("model_*.pth") if p.name != FINAL and p.stem[6:].isdigit())
        for old in periodic[:-keep]:
            if old != path:
                old.unlink()
    return path


def last_checkpoint(out_dir: Path) -> Optional[Path]:
    marker = out_dir / LAST_CHECKPOINT
    if not marker.exists():
        return None
    path = out_dir / marker.read_text(encoding="utf-8").strip()
    return path if path.exists() else None


def read_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """{'model': state dict, 'iteration': int, and the run state saved with it}, read with weights_only."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist") from None
    except Exception as err:
        raise CheckpointError(f"Checkpoint {path} cannot be read as a PyTorch file: {err}") from err
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), Mapping):
        raise CheckpointError(f"{path} is not a training checkpoint (no 'model' state dict)")
    if not isinstance(obj.get("run_state"), str):
        raise CheckpointError(f"{path} holds weights but no run state: it cannot resume a run (start one from it "
                              "with --init instead)")
    state = unpack_run_state(obj["run_state"], obj.get("run_tensors", {}))
    return {**state, "model": obj["model"], "iteration": int(obj.get("iteration", state.get("iteration", 0)))}


def load_trained(path: Union[str, Path]) -> Tuple[SAN, Dict[str, Any]]:
    """A SAN built from the checkpoint's own san_config (any configuration, not only the presets), its weights
    loaded strictly; returns it in eval mode with the checkpoint dict."""
    obj = read_checkpoint(path)
    if not isinstance(obj.get("san_config"), Mapping):
        raise CheckpointError(f"{path} has no san_config: use models.san.checkpoint.load_san for released files")
    san = SAN(SanCfg.from_dict(dict(obj["san_config"])))
    state = {k: v for k, v in obj["model"].items() if k != "criterion.empty_weight"}
    load_state_dict_strict(san, state, str(path))
    return san.eval(), obj


def openai_to_san(state_dict: Mapping[str, Tensor], feature_last_layer: int) -> Dict[str, Tensor]:
    """OpenAI CLIP keys → SAN keys (docs/training.md; san-architecture.md §6.2), float32.

    visual.* goes to clip_visual_extractor (blocks < feature_last_layer) and clip_rec_head (the rest, re-indexed
    from 0, with ln_post and proj); the text tower goes to ov_classifier. input_resolution, context_length and
    vocab_size are dropped.
    """
    out: Dict[str, Tensor] = {}
    prefix_blocks = "visual.transformer.resblocks."
    for key, value in state_dict.items():
        value = value.float()
        if key in ("input_resolution", "context_length", "vocab_size"):
            continue
        if key.startswith(prefix_blocks):
            index, rest = key[len(prefix_blocks):].split(".", 1)
            i = int(index)
            if i < feature_last_layer:
                out[f"clip_visual_extractor.resblocks.{i}.{rest}"] = value
            else:
                out[f"clip_rec_head.resblocks.{i - feature_last_layer}.{rest}"] = value
        elif key.startswith("visual.ln_post.") or key == "visual.proj":
            out["clip_rec_head." + key[len("visual."):]] = value
        elif key.startswith("visual."):
            out["clip_visual_extractor." + key[len("visual."):]] = value
        else:
            out["ov_classifier." + key] = value
    return out


def _read_any(path: Path) -> Dict[str, Tensor]:
    try:
        return read_state_dict(path)
    except CheckpointError as err:
        # OpenAI's released CLIP files are TorchScript archives, which weights_only loading refuses.
        try:
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except Exception:
            raise err from None


def load_init(san: SAN, path: Union[str, Path]) -> str:
    """Loads starting weights into `san` and says what they were.

    A SAN checkpoint (released or from a run) loads whole and strictly. An OpenAI CLIP file (ViT-B-16.pt,
    ViT-L-14-336px.pt, or its state dict) fills the CLIP towers strictly and leaves the side network and bg_embed
    as initialised: training from scratch, as the reference does.
    """
    path = Path(path)
    state = _read_any(path)
    if "visual.conv1.weight" in state:
        mapped = openai_to_san(state, san.cfg.clip_visual.feature_last_layer)
        clip_keys = [k for k in san.state_dict() if k.split(".", 1)[0] in ("clip_visual_extractor", "clip_rec_head",
                                                                             "ov_classifier")
                     and k not in ("ov_classifier.bg_embed", "ov_classifier.attn_mask")]
        expected = san.state_dict()
        missing = [k for k in clip_keys if k not in mapped]
        unexpected = [k for k in mapped if k not in expected]
        misshaped = [k for k in mapped if k in expected and mapped[k].shape != expected[k].shape]
        if missing or unexpected or misshaped:
            raise CheckpointError(f"{path} (OpenAI CLIP) does not match the {len(clip_keys)} CLIP weights of the "
                                  f"model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                                  f"mis-shaped {misshaped[:5]}")
        san.load_state_dict(mapped, strict=False)
        return f"OpenAI CLIP weights from {path}; side network and bg_embed initialised at random"
    load_state_dict_strict(san, state, str(path))
    return f"SAN weights from {path}"


