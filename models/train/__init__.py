"""Training SAN: the reference recipe (set-prediction loss, Hungarian matching, AdamW, poly schedule, AMP) for
fine-tuning official weights or training on a new dataset. See docs/training.md.

    python3 -m models.train --config CFG.json --data DIR --out DIR [--resume] [--init CHECKPOINT.pth] ...
"""
from .checkpoints import load_init, load_trained, read_checkpoint
from .config import TrainCfg, load_train_config
from .criterion import SetCriterion
from .data import FolderDataset, ImageError, TrainTransform, make_targets
from .matcher import HungarianMatcher
from .optim import build_optimizer, freeze_clip, param_groups
from .train import Trainer, TrainResult, train

__all__ = ["FolderDataset", "HungarianMatcher", "ImageError", "SetCriterion", "TrainCfg", "TrainResult",
           "TrainTransform", "Trainer", "build_optimizer", "freeze_clip", "load_init", "load_train_config",
           "load_trained", "make_targets", "param_groups", "read_checkpoint", "train"]
