"""The training loop: Trainer (one optimisation step on a batch, its state) and train() (a whole run with data,
progress, checkpoints, the loss curve and the export of the result)."""
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple, Union

import torch
from torch import Tensor

from ..export import check_model_dir, write_model_dir
from ..san.model import SAN
from ..san.text import TEMPLATE_SETS, class_embeddings
from ..san.tokenizer import SimpleTokenizer
from .checkpoints import FINAL, checkpoint_name, last_checkpoint, read_checkpoint, save_checkpoint
from .config import TrainCfg
from .criterion import SetCriterion
from .data import mix_seed, make_targets, train_loader
from .matcher import HungarianMatcher
from .optim import CLIP_MODULES, PolySchedule, build_optimizer, clip_gradients, freeze_clip
from .plot import plot_losses

LOSS_FILE = "losses.tsv"  # one line per step: step, total, then each loss term
METRICS_FILE = "metrics.jsonl"  # one record per log period: means over the period, lr, timings
CURVE_FILE = "loss.png"
MODEL_DIR = "model"
LOSS_TERMS = ("loss_ce", "loss_mask", "loss_dice")  # columns of losses.tsv after the total, summed over blocks


class Trainer:
    """One SAN, its criterion, optimiser, schedule and loss scaler, and the class embeddings it trains against.

    `step(images, labels)` runs one optimisation step on a batch: uint8 images (B, 3, S, S) and int64 labels
    (B, S, S) with cfg.ignore_label for no class. The text embeddings of `class_names` are computed once by the
    model's own (frozen) text encoder with the config's prompt templates.
    """

    def __init__(self, san: SAN, class_names: Sequence[str], cfg: TrainCfg, tokenizer: SimpleTokenizer,
                 device: Union[str, torch.device] = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.san = san.to(self.device)
        self.class_names = list(class_names)
        self.side_layers = cfg.side_layers()
        self.trainable = freeze_clip(san, cfg.clip_frozen_exclude)
        self.optimizer = build_optimizer(san, cfg)
        self.schedule = PolySchedule(self.optimizer, cfg.steps, cfg.poly_power)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.scaler = _grad_scaler(self.amp)
        matcher = HungarianMatcher(cfg.class_weight, cfg.mask_weight, cfg.dice_weight, cfg.num_points)
        self.criterion = SetCriterion(len(self.class_names), matcher, cfg.class_weight, cfg.mask_weight,
                                      cfg.dice_weight, cfg.no_object_weight, cfg.num_points, cfg.oversample_ratio,
                                      cfg.importance_sample_ratio).to(self.device)
        self.tokenizer = tokenizer
        self.text_embeds = self.encode_classes()
        self.step_count = 0

    def encode_classes(self) -> Tensor:
        """The class embeddings from the current (frozen) text tower; recomputed whenever weights are loaded."""
        self.san.ov_classifier.eval()
        def encode_text(token_ids: Tensor) -> Tensor:
            return self.san.ov_classifier(token_ids.to(self.device))

        return class_embeddings(encode_text, self.tokenizer, self.class_names,
                                TEMPLATE_SETS[self.san.cfg.template_set],
                                self.san.cfg.text.context_length).to(self.device)

    def losses(self, images: Tensor, labels: Tensor, generator: Optional[torch.Generator] = None
               ) -> Dict[str, Tensor]:
        """The weighted losses of a batch (loss_ce, loss_mask, loss_dice, and _0, _1, ... for earlier blocks)."""
        images = images.to(self.device, non_blocking=True)
        targets = make_targets(labels.to(self.device, non_blocking=True), len(self.class_names),
                               self.cfg.ignore_label)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.amp):
            outputs = self.san.forward_train(images, self.text_embeds, self.side_layers)
        outputs = [(masks.float(), logits.float()) for masks, logits in outputs]
        return self.criterion(outputs, targets, generator)

    def step(self, images: Tensor, labels: Tensor) -> Dict[str, float]:
        """One optimisation step; returns the loss terms, their sum ("loss"), the gradient norm and the lr used."""
        # The frozen CLIP towers stay in eval mode: a convolutional stem's BatchNorm keeps its pre-trained statistics.
        self.san.train()
        for name in CLIP_MODULES:
            getattr(self.san, name).eval()
        # Point sampling of step s depends only on (seed, s), so a resumed run samples what the whole run would.
        seed = mix_seed(self.cfg.seed, 2 << 40, self.step_count)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        losses = self.losses(images, labels, generator)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"Loss became {float(total)} at step {self.step_count}: "
                                     + ", ".join(f"{k} {float(v):.4g}" for k, v in losses.items()))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = clip_gradients(self.optimizer, self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        self.step_count += 1
        record = {name: float(value.detach()) for name, value in losses.items()}
        record.update(loss=float(total.detach()), grad_norm=grad_norm, lr=lr)
        return record

    def state(self) -> Dict[str, Any]:
        """The run state stored beside the weights in a checkpoint."""
        return {"iteration": self.step_count, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
                "train_config": self.cfg.to_dict(), "san_config": self.san.cfg.to_dict(),
                "class_names": list(self.class_names)}

    def model_state(self) -> Dict[str, Tensor]:
        """The official state dict: the model's keys plus criterion.empty_weight."""
        state = dict(self.san.state_dict())
        state["criterion.empty_weight"] = self.criterion.empty_weight
        return state

    def load(self, checkpoint: Dict[str, Any]):
        """Restores weights and run state from a read_checkpoint() dict written by `state()`."""
        model = {k: v for k, v in checkpoint["model"].items() if k != "criterion.empty_weight"}
        self.san.load_state_dict(model, strict=True)
        self.text_embeds = self.encode_classes()
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.schedule.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.step_count = int(checkpoint["iteration"])


def _grad_scaler(enabled: bool):
    """float16 loss scaling on CUDA; torch ≥ 2.3 names it torch.amp.GradScaler, torch 1.13 torch.cuda.amp's."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


@dataclass
class TrainResult:
    steps: int  # steps done in total (resumed runs included)
    checkpoint: Path  # model_final.pth
    model_dir: Optional[Path]  # the exported folder, None when export was off
    losses: List[float] = field(default_factory=list)  # total loss of every step of the run, from step 0
    seconds: float = 0.0  # wall time of this call


class Progress:
    """A plain-text progress line on stderr: rewritten in place on a terminal, one line per log period otherwise."""

    def __init__(self, total: int, stream: TextIO, period: int):
        self.total, self.stream, self.period = total, stream, period
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.monotonic()

    def update(self, step: int, record: Dict[str, float], seconds_per_step: float):
        if not self.tty and step % self.period and step != self.total:
            return
        done = step / self.total
        bar = "#" * int(done * 20) + "-" * (20 - int(done * 20))
        eta = seconds_per_step * (self.total - step)
        terms = " ".join(f"{k[5:]} {v:.3f}" for k, v in record.items() if k.startswith("loss_") and "_" not in k[5:])
        line = (f"step {step}/{self.total} [{bar}] {100 * done:3.0f}% loss {record['loss']:.4f} ({terms}) "
                f"lr {record['lr']:.2e} {seconds_per_step:.2f} s/step eta {_duration(eta)}")
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        if self.tty and step == self.total:
            self.stream.write("\n")
        self.stream.flush()

    def message(self, text: str):
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _read_losses(path: Path, before: int) -> List[Tuple[int, List[float]]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        fields_ = line.split("\t")
        if fields_ and int(fields_[0]) < before:
            rows.append((int(fields_[0]), [float(x) for x in fields_[1:]]))
    return rows


def train(san: SAN, dataset, out_dir: Union[str, Path], cfg: TrainCfg, vocab_path: Union[str, Path], *,
          class_names: Optional[Sequence[str]] = None, device: Union[str, torch.device] = "cpu",
          resume: bool = False, variant: Optional[str] = None, export: bool = True,
          log: Optional[TextIO] = None) -> TrainResult:
    """Trains `san` on `dataset` for cfg.steps steps of cfg.batch_size images and writes to out_dir:

    * model_NNNNNNN.pth every cfg.checkpoint_period steps and model_final.pth, official containers with the run
      state (see checkpoints.py); last_checkpoint names the newest;
    * losses.tsv (every step), metrics.jsonl (every cfg.log_period steps) and loss.png (at each checkpoint);
    * model/: the exported model folder (models.export.write_model_dir, then checked), unless export is False.

    dataset: `__len__`, `__getitem__(i)` → (uint8 (3, H, W), int64 (H, W)) and, unless class_names is given,
    `class_names`. vocab_path: the BPE merges of the model's text encoder (CLIP's file for the official models).
    resume: continue from out_dir/last_checkpoint when there is one (weights, optimiser, schedule, data order).
    variant: the manifest's variant; defaults to cfg.model when that is a preset name, else "custom".
    `san` is trained in place on `device` and stays there, in eval mode; its CLIP towers are frozen except the
    visual positional embedding (requires_grad stays as training set it). Progress goes to `log` (default: sys.stderr at the time of the call).
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(class_names if class_names is not None else dataset.class_names)
    if len(dataset) == 0:
        raise ValueError("The dataset holds no images")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("Expected a usable device for device but received 'cuda': torch.cuda.is_available() is "
                         "False on this machine")
    tokenizer = SimpleTokenizer(Path(vocab_path))
    if tokenizer.vocab_size != san.cfg.text.vocab_size:
        raise ValueError(f"{vocab_path} gives {tokenizer.vocab_size} tokens but the text encoder has "
                         f"{san.cfg.text.vocab_size}; pass the vocabulary the model was trained with")
    trainer = Trainer(san, names, cfg, tokenizer, device)
    progress = Progress(cfg.steps, log or sys.stderr, cfg.log_period)

    start = 0
    resumed_from = last_checkpoint(out_dir) if resume else None
    if resumed_from is not None:
        trainer.load(read_checkpoint(resumed_from))
        start = trainer.step_count
        progress.message(f"Resuming from {resumed_from} at step {start}")
    history = _read_losses(out_dir / LOSS_FILE, start) if resumed_from is not None else []
    loss_file = (out_dir / LOSS_FILE).open("w", encoding="utf-8")
    loss_file.write("step\tloss\t" + "\t".join(LOSS_TERMS) + "\n")
    for s, values in history:
        loss_file.write(f"{s}\t" + "\t".join(f"{v:.6g}" for v in values) + "\n")
    metrics_file = (out_dir / METRICS_FILE).open("a" if resumed_from is not None else "w", encoding="utf-8")
    progress.message(f"Training {len(trainer.trainable)} parameter tensors "
                     f"({sum(p.numel() for p in san.parameters() if p.requires_grad):,} values) on {device}, "
                     f"{len(dataset)} images, {len(names)} classes, steps {start}..{cfg.steps}, batch "
                     f"{cfg.batch_size}, crop {cfg.crop_size}, {'AMP float16' if trainer.amp else 'float32'}")
    manifest_variant = variant or (cfg.model if isinstance(cfg.model, str) else "custom")

    def checkpoint(name: str) -> Path:
        extra = trainer.state()
        extra["variant"] = manifest_variant
        path = save_checkpoint(out_dir, name, trainer.model_state(), extra, cfg.keep_checkpoints)
        if history:
            columns = list(zip(*[values for _, values in history]))
            series = {label: list(column) for label, column in zip(["loss"] + [t[5:] for t in LOSS_TERMS], columns)}
            plot_losses(out_dir / CURVE_FILE, [s + 1 for s, _ in history], series,
                        title="training loss, terms summed over the supervised side blocks")
        return path

    try:
        period: List[Dict[str, float]] = []
        data_time = 0.0
        period_start = tick = time.monotonic()
        for images, labels in train_loader(dataset, cfg, start, cfg.steps, cfg.batch_size, cfg.seed):
            data_time += time.monotonic() - tick
            record = trainer.step(images, labels)
            step = trainer.step_count
            summed = _summed_terms(record)
            values = [record["loss"]] + [summed[t] for t in LOSS_TERMS]
            history.append((step - 1, values))
            loss_file.write(f"{step - 1}\t" + "\t".join(f"{v:.6g}" for v in values) + "\n")
            period.append(record)
            tick = time.monotonic()
            progress.update(step, record, (tick - progress.start) / max(1, step - start))
            if step % cfg.log_period == 0 or step == cfg.steps:
                mean = {k: sum(r[k] for r in period) / len(period) for k in period[0]}
                mean.update(step=step, seconds_per_step=(tick - period_start) / len(period),
                            data_seconds_per_step=data_time / len(period))
                metrics_file.write(json.dumps(mean) + "\n")
                metrics_file.flush()
                loss_file.flush()
                period, data_time, period_start = [], 0.0, tick
            if step % cfg.checkpoint_period == 0 and step != cfg.steps:
                checkpoint(checkpoint_name(step))
    finally:
        loss_file.close()
        metrics_file.close()
    final = checkpoint(FINAL)
    san.eval()
    progress.message(f"Wrote {final}")

    model_dir = None
    if export:
        model_dir = out_dir / MODEL_DIR
        # Exported from the CPU, so that the TorchScript files hold no device.
        write_model_dir(san.cpu(), manifest_variant, Path(vocab_path), model_dir)
        san.to(device)
        problems = check_model_dir(model_dir)
        if problems:
            raise RuntimeError(f"The exported folder {model_dir} fails its check: " + "; ".join(problems))
        progress.message(f"Exported the model to {model_dir}")
    return TrainResult(trainer.step_count, final, model_dir, [v[0] for _, v in history],
                       time.monotonic() - started)


def _summed_terms(record: Dict[str, float]) -> Dict[str, float]:
    """loss_ce, loss_mask, loss_dice summed over the supervised blocks."""
    out: Dict[str, float] = {term: 0.0 for term in LOSS_TERMS}
    for key, value in record.items():
        if key.startswith("loss_"):
            base = "loss_" + key[5:].split("_")[0]
            out[base] += value
    return out


def with_overrides(cfg: TrainCfg, **overrides: Any) -> TrainCfg:
    """cfg with the given fields replaced (None values ignored), validated again."""
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
