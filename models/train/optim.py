"""What trains and how: CLIP frozen but for its visual positional embedding, AdamW parameter groups with the
reference's weight-decay exceptions and lr multipliers, the poly schedule and full-model gradient clipping.
"""
from typing import Any, Dict, Iterable, List, Tuple

import torch
from torch import nn

from ..san.model import SAN
from .config import TrainCfg

CLIP_MODULES = ("clip_visual_extractor", "clip_rec_head", "ov_classifier")


def freeze_clip(san: SAN, frozen_exclude: Iterable[str] = ("positional_embedding",)) -> List[str]:
    """Freezes the CLIP towers as the reference does and returns the names of the trainable parameters.

    Trainable: the whole side network, clip_visual_extractor parameters whose name contains one of
    `frozen_exclude` (the positional embedding), and ov_classifier.bg_embed. Frozen: every other CLIP weight,
    ov_classifier.logit_scale included.
    """
    exclude = tuple(frozen_exclude)
    for name, param in san.named_parameters():
        module = name.split(".", 1)[0]
        if module == "clip_visual_extractor":
            param.requires_grad_(any(part in name.split(".", 1)[1] for part in exclude))
        elif module in ("clip_rec_head", "ov_classifier"):
            param.requires_grad_(name == "ov_classifier.bg_embed")
        else:
            param.requires_grad_(True)
    return [name for name, param in san.named_parameters() if param.requires_grad]


def param_groups(model: nn.Module, cfg: TrainCfg) -> List[Dict[str, Any]]:
    """AdamW groups of the trainable parameters, one per (lr, weight decay), each with the names it holds.

    Follows the reference's build_optimizer: lr × side_lr_multiplier under side_adapter_network, × clip_lr_multiplier
    under modules named clip_*; weight_decay_embed for parameters whose own name contains a no_decay_names entry;
    weight_decay_norm for torch.nn.LayerNorm (and other torch norm) parameters; weight_decay otherwise.
    """
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._BatchNorm,
                  nn.modules.instancenorm._InstanceNorm)
    groups: Dict[Tuple[float, float], Dict[str, Any]] = {}
    seen = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr = cfg.lr
            if "side_adapter_network" in module_name:
                lr *= cfg.side_lr_multiplier
            if "clip" in module_name:
                lr *= cfg.clip_lr_multiplier
            weight_decay = cfg.weight_decay
            if any(part in param_name for part in cfg.no_decay_names):
                weight_decay = cfg.weight_decay_embed
            if isinstance(module, norm_types):
                weight_decay = cfg.weight_decay_norm
            if isinstance(module, nn.Embedding):
                weight_decay = cfg.weight_decay_embed
            group = groups.setdefault((lr, weight_decay), {"params": [], "names": [], "lr": lr,
                                                           "weight_decay": weight_decay})
            group["params"].append(param)
            group["names"].append(f"{module_name}.{param_name}" if module_name else param_name)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: TrainCfg) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    if not groups:
        raise ValueError("The model has no trainable parameters (was everything frozen?)")
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def poly_factor(step: int, max_steps: int, power: float) -> float:
    """detectron2's WarmupPolyLR without warm-up: (1 − step / max_steps) ^ power."""
    return (1.0 - step / max_steps) ** power


class PolySchedule:
    """Sets every group's lr to its base lr × poly_factor(step); state is only the step, so resuming is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_steps: int, power: float = 0.9):
        self.optimizer = optimizer
        self.max_steps = max_steps
        self.power = power
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.step_count = 0
        self._apply()

    def _apply(self):
        factor = poly_factor(min(self.step_count, self.max_steps), self.max_steps, self.power)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def step(self):
        self.step_count += 1
        self._apply()

    def state_dict(self) -> Dict[str, Any]:
        return {"step_count": self.step_count, "max_steps": self.max_steps, "power": self.power}

    def load_state_dict(self, state: Dict[str, Any]):
        self.step_count = int(state["step_count"])
        self._apply()


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> float:
    """clip_grad_norm_ over every parameter of every group together (the reference's full_model clipping).

    Returns the total norm before clipping; max_norm 0 only measures it.
    """
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return 0.0
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.norm(torch.stack([p.grad.detach().norm() for p in params])))
