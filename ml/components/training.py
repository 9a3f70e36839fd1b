"""The one training loop of every pipeline that learns weights (DESIGN.md section 4, issue 8).

A pipeline says what one optimisation step is (``train_step``) and how good the
current weights are (``validate``); :class:`Trainer` owns everything else:

- the length is a budget of steps (``max_steps``) and optionally of seconds
  (``max_seconds``), reported as steps and as epochs;
- learning-rate warm-up then cosine decay, gradient clipping, Adam;
- mixed precision on CUDA (bfloat16 where the GPU has it, else float16 with a
  gradient scaler); CPU runs stay in float32 and are repeatable for a seed;
- validation every ``val_every`` steps with the pipeline's own measure, early
  stopping after ``patience`` validations without improvement, and the best
  weights restored at the end;
- progress with step, epoch, loss, validation measure, learning rate and ETA,
  and the training / validation curves kept for the model version.

Pipelines that train several networks against each other (GANs) create their
own optimizers, hand them in by name, and call :meth:`Trainer.backward_step`
inside ``train_step``; the loop still owns budget, schedule, validation and
restoring.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from ml.base import ProgressFn, no_progress
from ml.config import TrainingConfig

StepResult = torch.Tensor | Mapping[str, float] | None


@dataclasses.dataclass
class TrainingReport:
    """What a training did; stored in the artifact's ``meta['training']`` and on the model version.

    ``curves``: ``{"train_loss": [[step, mean loss since the previous point], ...],
    "validation": [[step, measure], ...]}``.
    """

    steps: int
    epochs: float
    seconds: float
    stopped: str  # "budget", "time" or "early stop"
    measure: str
    higher_is_better: bool
    best_step: int | None
    best_value: float | None
    validation: str  # where the validation images came from: "job", "held back", "none"
    curves: dict[str, list[list[float]]]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based): linear warm-up over
    ``warmup`` steps, then constant or cosine decay to 1% at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, *, drop_lonely: bool = True) -> Iterator[torch.Tensor]:
    """Endless indices of shuffled batches over ``n`` items, one reshuffle per epoch.

    A trailing batch of one item (batch norm needs two) borrows a random partner
    when ``drop_lonely`` and ``n > 1``.
    """
    if n <= 0:
        raise ValueError("no training items")
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if drop_lonely and idx.numel() == 1 and n > 1:
                idx = torch.cat([idx, order[:1] if order[0] != idx[0] else order[1:2]])
            yield idx


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Pinned, non-blocking host-to-GPU copy on CUDA; a no-op on CPU."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the GPU supports it, else float16; None on CPU (float32 training)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@torch.no_grad()
def pixel_f1_max(probabilities: torch.Tensor, truth: torch.Tensor, bins: int = 1000) -> float:
    """Best F1 over thresholds of pixel ``probabilities`` in [0, 1] against binary ``truth``
    (same shape): the supervised pipelines' validation measure. Thresholds are ``bins``
    evenly spaced values; 0.0 when no pixel is anomalous."""
    p = probabilities.detach().float().flatten().clamp(0, 1)
    t = truth.detach().flatten() > 0.5
    positives = int(t.sum())
    if positives == 0:
        return 0.0
    index = (p * (bins - 1)).round().long()
    pos_hist = torch.bincount(index[t], minlength=bins).double()
    all_hist = torch.bincount(index, minlength=bins).double()
    # Predicted positive at threshold bin b: every pixel with index >= b.
    tp = pos_hist.flip(0).cumsum(0).flip(0)
    predicted = all_hist.flip(0).cumsum(0).flip(0)
    f1 = 2 * tp / (predicted + positives)
    return float(f1.max())


class Trainer:
    """Runs one training of ``model`` under a :class:`~ml.config.TrainingConfig`.

    ``model``: every trained network (an ``nn.ModuleDict`` when there are
    several); its state is what the loop snapshots and restores.
    ``optimizers``: by name; default one Adam over ``model``'s trainable
    parameters (``param_groups`` may set per-group ``lr_scale``, e.g. a smaller
    rate for a pretrained encoder). ``steps_per_epoch``: batches in one pass over
    the training set, to report epochs. ``measure``: name of the validation
    measure and whether higher is better.
    """

    def __init__(
        self,
        config: TrainingConfig,
        model: nn.Module,
        *,
        device: torch.device,
        steps_per_epoch: int,
        progress: ProgressFn = no_progress,
        measure: str = "val_loss",
        higher_is_better: bool = False,
        param_groups: list[dict] | None = None,
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        validation_source: str = "none",
    ):
        self.config = config
        self.model = model
        self.device = device
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.progress = progress
        self.measure = measure
        self.higher_is_better = higher_is_better
        self.validation_source = validation_source
        if optimizers is None:
            groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
            for group in groups:
                group["lr"] = config.learning_rate * float(group.get("lr_scale", 1.0))
            optimizers = {"model": torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay)}
        self.optimizers = dict(optimizers)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.amp_dtype = autocast_dtype(device) if config.mixed_precision else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.step = 0

    # --- inside a step ----------------------------------------------------------------
    def autocast(self):
        """The mixed-precision context of this training (a no-op on CPU)."""
        if self.amp_dtype is None:
            return torch.autocast(device_type="cpu", enabled=False)
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: str = "model", parameters=None) -> float:
        """Backward pass, gradient clipping and one step of the named optimizer; returns the loss.

        ``parameters``: what to clip (default the optimizer's parameters).
        """
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"training diverged at step {self.step + 1} (loss {value}); lower learning_rate")
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
        else:
            loss.backward()
        if self.config.grad_clip > 0:
            params = parameters if parameters is not None else [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        return value

    # --- the loop -----------------------------------------------------------------------
    def val_every(self) -> int:
        return self.config.val_every or max(1, self.config.max_steps // 20)

    def fit(
        self,
        train_step: Callable[[int], StepResult],
        validate: Callable[[], float] | None = None,
    ) -> TrainingReport:
        """Run ``train_step(step)`` until a budget ends or validation stops improving.

        ``train_step`` runs under :meth:`autocast` with the model in train mode
        and returns the loss tensor (the loop then takes the optimizer step) or,
        having called :meth:`backward_step` itself, a dict of logged floats whose
        ``loss`` entry is the loss. ``validate`` (model in eval mode, no
        gradients) returns the measure; without it the whole budget is trained
        and the final weights kept.
        """
        cfg = self.config
        every = self.val_every()
        started = time.monotonic()
        best_value: float | None = None
        best_step: int | None = None
        best_state = None
        bad_rounds = 0
        stopped = "budget"
        train_curve: list[list[float]] = []
        val_curve: list[list[float]] = []
        window: list[float] = []
        last_val: float | None = None
        self.model.train()
        while self.step < cfg.max_steps:
            factor = lr_factor(self.step, total=cfg.max_steps, warmup=cfg.warmup_steps, schedule=cfg.lr_schedule)
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = group["initial_lr"] * factor
            with self.autocast():
                result = train_step(self.step)
            if isinstance(result, torch.Tensor):
                loss = self.backward_step(result)
                logged: dict[str, float] = {}
            else:
                logged = {k: float(v) for k, v in dict(result or {}).items()}
                loss = logged.pop("loss", float("nan"))
            self.step += 1
            window.append(loss)
            elapsed = time.monotonic() - started
            out_of_time = cfg.max_seconds is not None and elapsed >= cfg.max_seconds
            done = self.step >= cfg.max_steps or out_of_time
            if self.step % every == 0 or done:
                train_curve.append([float(self.step), float(sum(window) / len(window))])
                window = []
                if validate is not None:
                    last_val = self._validate(validate)
                    val_curve.append([float(self.step), last_val])
                    improved = best_value is None or (
                        last_val > best_value if self.higher_is_better else last_val < best_value
                    )
                    if improved:
                        best_value, best_step, bad_rounds = last_val, self.step, 0
                        best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                    else:
                        bad_rounds += 1
                        if cfg.patience and bad_rounds >= cfg.patience:
                            stopped = "early stop"
                            done = True
            if out_of_time and stopped == "budget":
                stopped = "time"
            fraction = self.step / cfg.max_steps
            if cfg.max_seconds is not None:
                fraction = max(fraction, min(1.0, elapsed / cfg.max_seconds))
            metrics = {
                "step": float(self.step),
                "epoch": self.step / self.steps_per_epoch,
                "loss": loss,
                "lr": cfg.learning_rate * factor,
                "eta_seconds": 0.0 if done else elapsed / fraction * (1 - fraction) if fraction > 0 else 0.0,
                **logged,
            }
            if last_val is not None:
                metrics[self.measure] = last_val
            self.progress("train", 1.0 if done else fraction, metrics)
            if done:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        return TrainingReport(
            steps=self.step,
            epochs=round(self.step / self.steps_per_epoch, 3),
            seconds=round(time.monotonic() - started, 3),
            stopped=stopped,
            measure=self.measure,
            higher_is_better=self.higher_is_better,
            best_step=best_step,
            best_value=best_value,
            validation=self.validation_source,
            curves={"train_loss": train_curve, "validation": val_curve},
        )

    def _validate(self, validate: Callable[[], float]) -> float:
        self.model.eval()
        try:
            with torch.no_grad(), self.autocast():
                value = float(validate())
        finally:
            self.model.train()
        if not math.isfinite(value):
            raise FloatingPointError(f"validation measure {self.measure} is {value} at step {self.step}")
        return value
