"""One training loop for supernets (paths drawn by a sampler) and stand-alone models.

The loop is resumable at any checkpointed step: data order, augmentation and sampled paths are
functions of (seed, epoch, step), and the torch RNG state is saved with the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from supernet.core.device import Runtime
from supernet.core.errors import ConfigError, SupernetError
from supernet.core.rundir import CHECKPOINTS, LAST, METRICS
from supernet.train.checkpoint import (
    find_checkpoint,
    load_checkpoint,
    require_previous,
    save_checkpoint,
    set_aside_last,
)

PathsForStep = Callable[[int, int], Sequence[Any]]  # Arch, MultiPath, or None for a plain model
Forward = Callable[[torch.Tensor, Any], torch.Tensor]


class TrainingDiverged(SupernetError):
    """The loss became NaN or infinite; `what` says where, without what was kept (the caller's to say)."""

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.what = what or message


@dataclass
class OptimConfig:
    """How one model is trained: the fields shared by the `train` (supernet) and `standalone` config
    sections, which subclass it and are passed to the `Trainer` as they are. `batch_size`, `seed`, `amp`,
    `channels_last` and `deterministic` are read by the code that builds the loader and the runtime."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_steps: int = 0  # linear warm-up in steps (or `warmup_epochs`; not both)
    warmup_epochs: float = 0.0  # linear warm-up in epochs of the loader: right for any data size
    schedule: str = "cosine"  # cosine | linear (SPOS, PAD-NAS: linear decay to zero)
    seed: int = 0
    grad_clip: float | None = None
    checkpoint_every_steps: int = 0
    progress: bool = True
    max_steps_per_epoch: int | None = None
    no_decay_bn: bool = True  # no weight decay on BatchNorm and inter-choice bias vectors (SPOS code, IC Table 5)
    amp: str | bool = "off"  # off | bf16 | fp16 (fp16: CUDA only, with a checkpointed gradient scaler);
    #                                 YAML reads a bare `off` as false, which means off
    channels_last: str | bool = "auto"  # auto (= on: faster on CPU and GPU here) | true | false
    deterministic: bool = False  # true: deterministic kernels, no cuDNN benchmark mode

    def __post_init__(self) -> None:
        check_schedule(self)


SCHEDULES = ("cosine", "linear")
# said by `supernet train` before its run directory is made, and by the Trainer (for api.fit)
ONE_PATH_RANKED = (
    "train.pairwise_rank_weight ranks two or more paths per step; the sampler draws one "
    "(set train.sampler_options.paths: 2 with the uniform sampler)"
)


def cosine_lr(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Linear warm-up then cosine decay to zero, as a pure function of the global step."""
    return scheduled_lr("cosine", base, step, total, warmup)


def scheduled_lr(schedule: str, base: float, step: int, total: int, warmup: int = 0) -> float:
    """Linear warm-up over `warmup` steps, then `schedule` decay to zero at `total`: `cosine`, or `linear`
    (SPOS and PAD-NAS), as a pure function of the global step."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return base * (1.0 - progress)
    return 0.5 * base * (1 + math.cos(math.pi * progress))


def check_schedule(cfg: OptimConfig) -> None:
    """A one-line ConfigError for a schedule the loop does not know or two warm-ups at once."""
    section = "standalone" if type(cfg).__name__ == "StandaloneConfig" else "train"
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"{section}.schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    if cfg.warmup_steps and cfg.warmup_epochs:
        raise ConfigError(
            f"{section}: give warmup_steps or warmup_epochs, not both (got {cfg.warmup_steps} steps and "
            f"{cfg.warmup_epochs} epochs)"
        )


def warmup_steps(cfg: OptimConfig, steps_per_epoch: int) -> int:
    """The warm-up in steps: `warmup_steps`, or `warmup_epochs` of `steps_per_epoch` (rounded)."""
    return cfg.warmup_steps or round(cfg.warmup_epochs * steps_per_epoch)


def steps_per_epoch(loader: Any, cfg: OptimConfig) -> int:
    """An epoch's steps: the loader's batches, at most `cfg.max_steps_per_epoch`."""
    return min(len(loader), cfg.max_steps_per_epoch or len(loader))


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.SGD:
    """SGD over the model's parameters; with `no_decay_bn`, BatchNorm parameters and modules marked
    `no_weight_decay` (inter-choice bias vectors) form a second group without weight decay."""
    groups = [{"params": list(model.parameters())}]
    if cfg.no_decay_bn:
        exempt = {id(p) for p in no_decay_parameters(model)}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in exempt]},
            {"params": [p for p in model.parameters() if id(p) in exempt], "weight_decay": 0.0},
        ]
    return torch.optim.SGD(
        groups,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )


def no_decay_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    """BatchNorm weights and biases, and the parameters of modules with `no_weight_decay = True`."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) or getattr(module, "no_weight_decay", False):
            yield from module.parameters(recurse=False)


class TrainHook:
    """Extension points of the loop (inter-choice split, health probes); the defaults do nothing."""

    def epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before each (possibly resumed) epoch's first step; may change the parameter set
        (then call `trainer.rebuild_optimizer`)."""

    def epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        """Extra fields for the epoch's JSONL row (called before the epoch's checkpoint)."""
        return {}

    def checkpoint_meta(self, trainer: Trainer) -> dict[str, Any]:
        """Extra fields for the checkpoint's meta."""
        return {}


class Local:
    """The single-process stand-in of `supernet.train.distributed.Distributed`."""

    rank, world_size, is_main = 0, 1, True

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def sync_grads(self, model: nn.Module) -> None:
        pass

    def barrier(self) -> None:
        pass


class Trainer:
    """Trains `model` on `loader`; each step sums the gradients of the paths `paths_for_step` gives.

    Parameters off the step's paths get no gradient (`grad` is None), so SGD leaves them,
    their momentum and their weight decay untouched.
    """

    def __init__(
        self,
        model: nn.Module,
        forward: Forward,
        paths_for_step: PathsForStep,
        loader: Any,
        cfg: OptimConfig,
        run_dir: Path,
        meta: dict[str, Any],
        log_name: str = METRICS,
        hooks: Sequence[TrainHook] = (),
        dist: Any = None,
        runtime: Runtime | None = None,
        distill: bool = False,
        tensorboard: bool = False,
        path_cost: Callable[[Any], float] | None = None,
        rank_weight: float = 0.0,
    ) -> None:
        """`tensorboard`: also write loss, path accuracy, lr, images/s per step and the epoch summaries
        (evaluation results of the hooks included) into RUN/tensorboard/ (the `[tensorboard]` extra).
        `path_cost` and `rank_weight`: the pairwise ranking loss with that cost as its prior (None: none)."""
        self.distill = distill  # the step's first path teaches the others (in-place distillation)
        self.path_cost, self.rank_weight = path_cost, rank_weight
        self.runtime = runtime if runtime is not None else Runtime()
        self.model = self.runtime.prepare(model)
        self.forward = forward
        self.paths_for_step = paths_for_step
        self.loader = loader
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / CHECKPOINTS
        self.meta = meta
        self.log_path = self.run_dir / log_name
        self.tensorboard = tensorboard
        self._log_file: IO[str] | None = None  # metrics.jsonl, open from a fit's first row to its end
        self._events: Any = None  # the TensorBoard sink of the fit in progress
        self.optimizer = make_optimizer(model, cfg)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.steps_per_epoch = steps_per_epoch(loader, cfg)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup = warmup_steps(cfg, self.steps_per_epoch)
        self.global_step = 0
        self.hooks = list(hooks)
        self.dist = dist if dist is not None else Local()
        self.epoch_rows: list[dict[str, Any]] = []  # the epoch in progress, kept in mid-epoch checkpoints
        self.scaler = self.runtime.grad_scaler()

    def rebuild_optimizer(self, origin: dict[nn.Parameter, nn.Parameter] | None = None) -> None:
        """A new optimizer over the model's current parameters; a parameter keeps its state, and a
        new one listed in `origin` (new -> old, e.g. a split copy) starts from a copy of the old one's."""
        old = self.optimizer.state
        self.optimizer = make_optimizer(self.model, self.cfg)
        for p in self.model.parameters():
            src = (origin or {}).get(p, p)
            if src in old:
                self.optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v for k, v in old[src].items()}

    # -- checkpoints ---------------------------------------------------------------------------
    def resume(self, fallback: bool = False) -> bool:
        """Load the last checkpoint if there is one; returns whether training resumed."""
        if fallback:
            require_previous(self.ckpt_dir)
        path = find_checkpoint(self.ckpt_dir, fallback)
        if path is None:
            return False
        ckpt = load_checkpoint(path, expect=self._identity())
        self.dist.barrier()  # every rank has read the file before rank 0 sets it aside
        if fallback and self.dist.is_main:
            set_aside_last(self.ckpt_dir)
        self.model.load_state_dict(ckpt.state["model"])  # a split supernet's state splits it first
        self.rebuild_optimizer()  # over the (possibly split) parameters, before loading their state
        self.optimizer.load_state_dict(ckpt.state["optimizer"])
        torch.set_rng_state(ckpt.state["torch_rng"])
        if self.scaler.is_enabled() and "scaler" in ckpt.state:  # an fp32/bf16 checkpoint starts a fresh scale
            self.scaler.load_state_dict(ckpt.state["scaler"])
        self.global_step = int(ckpt.meta["global_step"])
        self.epoch_rows = list(ckpt.state.get("epoch_rows", [])) if self.global_step % self.steps_per_epoch else []
        self._truncate_log(self.global_step)
        return True

    def _identity(self) -> dict[str, Any]:
        return {k: self.meta[k] for k in ("kind", "space_fingerprint", "config_hash") if k in self.meta}

    def save(self) -> Path:
        """Rank 0 writes the checkpoint; every rank waits until it is complete."""
        path = self.ckpt_dir / LAST
        if self.dist.is_main:
            meta = {
                **self.meta,
                "global_step": self.global_step,
                "epoch": self.global_step // max(1, self.steps_per_epoch),
            }
            for hook in self.hooks:
                meta.update(hook.checkpoint_meta(self))
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "epoch_rows": self.epoch_rows,
            }
            if self.scaler.is_enabled():
                state["scaler"] = self.scaler.state_dict()
            path = save_checkpoint(self.ckpt_dir, meta, state)
        self.dist.barrier()
        return path

    # -- training ------------------------------------------------------------------------------
    def fit(self, until_step: int | None = None) -> list[dict[str, Any]]:
        """Train until `cfg.epochs` are done; returns the per-epoch summaries of this call. `until_step`: stop
        once the global step reaches it (the first steps of the whole schedule, e.g. to measure them; a later
        `fit` continues; an epoch cut short is neither summarised nor checkpointed)."""
        from supernet.core.events import open_events

        self._events = open_events(self.run_dir, self.tensorboard and self.dist.is_main)
        try:
            return self._fit(self.total_steps if until_step is None else min(until_step, self.total_steps))
        finally:
            self._close_logs()

    def _fit(self, stop: int) -> list[dict[str, Any]]:
        summaries = []
        while self.global_step < stop:
            epoch, start = divmod(self.global_step, self.steps_per_epoch)
            for hook in self.hooks:
                hook.epoch_start(self, epoch)
            rows = self._run_epoch(epoch, start, stop)  # with the rows from before a mid-epoch resume
            if self.global_step < (epoch + 1) * self.steps_per_epoch:
                break  # stopped inside the epoch (`until_step`)
            self.epoch_rows = []
            summary = epoch_summary(epoch, rows)
            for hook in self.hooks:
                summary.update(hook.epoch_end(self, epoch))
            self._log(summary)
            self._events.scalars(summary["end_step"], {f"epoch/{k}": v for k, v in summary.items() if k != "epoch"})
            self.save()
            summaries.append(summary)
        return summaries

    def _run_epoch(self, epoch: int, start: int, stop: int) -> list[dict[str, Any]]:
        self.model.train()
        batches = self.loader.iter_epoch(epoch, start_batch=start)
        bar = _progress(
            self.cfg.progress and self.dist.is_main, total=self.steps_per_epoch, initial=start, desc=f"epoch {epoch}"
        )
        rows = self.epoch_rows if start else []
        self.epoch_rows = rows
        for step in range(start, min(self.steps_per_epoch, stop - epoch * self.steps_per_epoch)):
            began = time.perf_counter()
            x, y = next(batches)
            row = self._step(epoch, step, self.runtime.batch(x), self.runtime.labels(y))
            rows.append(_summary_fields(row))
            self._log(row)
            images_per_s = len(y) * self.dist.world_size / max(time.perf_counter() - began, 1e-9)
            self._events.scalars(row["global_step"], _step_scalars(row, images_per_s))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['acc']:.3f}")
            every = self.cfg.checkpoint_every_steps
            if every and self.global_step % every == 0 and step + 1 < self.steps_per_epoch:
                self.save()
        if bar is not None:
            bar.close()
        return rows

    def _step(self, epoch: int, step: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        lr = scheduled_lr(self.cfg.schedule, self.cfg.lr, self.global_step, self.total_steps, self.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        paths = self.paths_for_step(epoch, step)
        extra: dict[str, Any] = {}
        if self.path_cost is not None:
            losses, accs, extra["rank_hinge"] = self._ranked_backward(epoch, step, x, y, paths)
        else:
            losses, accs = self._backward(epoch, step, x, y, paths)
        self.dist.sync_grads(self.model)  # scaled gradients: an overflow on any rank reaches every rank
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], self.cfg.grad_clip)
        self._optimizer_step(paths)
        self.scaler.update()
        self.global_step += 1
        row: dict[str, Any] = {
            "type": "step",
            "epoch": epoch,
            "step": step,
            "global_step": self.global_step,
            "lr": lr,
            "loss": sum(losses) / len(losses),
            "acc": sum(accs) / len(accs),
        }
        if paths[0] is not None:
            row["paths"] = [str(a) for a in paths]
            row["path_acc"] = accs
        return {**row, **extra}

    def _backward(
        self, epoch: int, step: int, x: torch.Tensor, y: torch.Tensor, paths: Sequence[Any]
    ) -> tuple[list[float], list[float]]:
        """Each path's loss backpropagated in turn (with `distill`, the first path's logits teach the rest)."""
        losses, accs = [], []
        teacher = None
        for arch in paths:
            with self.runtime.autocast():
                logits = self.forward(x, arch)
                loss = self.criterion(logits, y) if teacher is None else soft_cross_entropy(logits, teacher)
            if self.distill and teacher is None:
                teacher = logits.detach().float().softmax(1)
            loss_value, acc_value = self._values(loss, logits, y, f"at epoch {epoch} step {step} (arch {arch})")
            self.scaler.scale(loss).backward()
            losses.append(loss_value)
            accs.append(acc_value)
        return losses, accs

    def _ranked_backward(
        self, epoch: int, step: int, x: torch.Tensor, y: torch.Tensor, paths: Sequence[Any]
    ) -> tuple[list[float], list[float], float]:
        """The paths' summed losses plus the pairwise ranking loss with a cost prior (PGONAS, PicoNAS): for
        each pair of paths of different cost, relu(L_costlier - L_cheaper.detach()), averaged over the pairs
        and weighted by `pairwise_rank_weight * sin(0.8 pi t / T)` (ramped up over training, t the global step
        of T); one backward pass. Returns the losses, accuracies and the hinge's value."""
        if len(paths) < 2:
            raise ConfigError(ONE_PATH_RANKED)
        graph, losses, accs = [], [], []
        for arch in paths:
            with self.runtime.autocast():
                logits = self.forward(x, arch)
                loss = self.criterion(logits, y)
            loss_value, acc_value = self._values(loss, logits, y, f"at epoch {epoch} step {step} (arch {arch})")
            graph.append(loss)
            losses.append(loss_value)
            accs.append(acc_value)
        costs = [self.path_cost(a) for a in paths]
        pairs = [(i, j) for i in range(len(paths)) for j in range(len(paths)) if costs[i] > costs[j]]
        hinge = sum((torch.relu(graph[i] - graph[j].detach()) for i, j in pairs), graph[0].new_zeros(()))
        hinge = hinge / max(1, len(pairs))
        weight = self.rank_weight * math.sin(0.8 * math.pi * self.global_step / max(1, self.total_steps))
        self.scaler.scale(sum(graph) + weight * hinge).backward()
        return losses, accs, float(hinge.detach())

    def _values(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, where: str) -> tuple[float, float]:
        """The loss and accuracy as numbers (the global batch's means under torchrun); a non-finite loss stops
        the training with `TrainingDiverged`."""
        acc = (logits.argmax(1) == y).float().mean()
        if self.dist.world_size > 1:  # the global batch's mean: the same on every rank
            loss_value, acc_value = self.dist.mean(torch.stack([loss.detach(), acc])).tolist()
        else:
            loss_value, acc_value = loss.item(), acc.item()
        if not math.isfinite(loss_value):
            what = f"loss became {loss_value} {where}"
            raise TrainingDiverged(
                f"{what}; stopped, the last good checkpoint is kept in {self.ckpt_dir} "
                f"(lower train.lr or set train.grad_clip)",
                what,
            )
        return loss_value, acc_value

    def _optimizer_step(self, paths: Sequence[Any]) -> None:
        """SGD step; a model with sliced width choices keeps the parts outside its paths' slices
        (and their momentum) untouched (`supernet.ops.slicing.OutsideSlicesKept`)."""
        masks = self.model.sliced_masks(paths) if paths[0] is not None else {}  # stand-alone models: no paths
        if not masks:
            self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed; a plain step otherwise
            return
        from supernet.ops.slicing import OutsideSlicesKept

        with OutsideSlicesKept(self.optimizer, masks):
            self.scaler.step(self.optimizer)

    # -- logging -------------------------------------------------------------------------------
    def _log(self, row: dict[str, Any]) -> None:
        """One JSONL row; the file is opened at a fit's first row and kept open until the fit ends, and
        flushed after every row, so a killed run leaves whole lines."""
        if not self.dist.is_main:
            return
        if self._log_file is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("a")
        self._log_file.write(json.dumps(row) + "\n")
        self._log_file.flush()

    def _close_logs(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._events is not None:
            self._events.close()
            self._events = None

    def _truncate_log(self, global_step: int) -> None:
        """Drop log rows written after the checkpoint we resume from, so none are duplicated."""
        if not self.dist.is_main or not self.log_path.exists():
            return
        from supernet.core.io import atomic_write_text

        kept = [line for line in self.log_path.read_text().splitlines() if _row_step(line) <= global_step]
        atomic_write_text(self.log_path, "".join(line + "\n" for line in kept))


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a teacher's probabilities (in-place distillation: BigNAS, once-for-all)."""
    return -(target_probs * logits.float().log_softmax(1)).sum(1).mean()


def _row_step(line: str) -> int:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return 1 << 62  # a line torn by a kill: drop it
    if row.get("type") == "epoch":
        return int(row.get("end_step", 0))
    return int(row.get("global_step", 0))


def _step_scalars(row: dict[str, Any], images_per_s: float) -> dict[str, float]:
    """A step row's TensorBoard scalars: loss, path accuracy (mean over the step's paths), lr, images/s."""
    scalars = {"train/loss": row["loss"], "train/acc": row["acc"], "train/lr": row["lr"]}
    return {**scalars, "train/images_per_s": images_per_s}


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What `epoch_summary` reads of a step row (numbers only: checkpoints load with weights_only)."""
    return {k: row[k] for k in ("global_step", "loss", "acc", "path_acc") if k in row}


def epoch_summary(epoch: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of the sampled paths' training accuracy over an epoch (SCARLET Fig. 3 top)."""
    accs = torch.tensor([a for r in rows for a in r.get("path_acc", [r["acc"]])])
    losses = torch.tensor([r["loss"] for r in rows])
    return {
        "type": "epoch",
        "epoch": epoch,
        "end_step": rows[-1]["global_step"] if rows else 0,
        "loss": losses.mean().item() if len(rows) else float("nan"),
        "acc_mean": accs.mean().item() if len(accs) else float("nan"),
        "acc_std": accs.std().item() if len(accs) > 1 else 0.0,
    }


def _progress(enabled: bool, **kw: Any):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(leave=False, dynamic_ncols=True, **kw)


@torch.no_grad()
def accuracy(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    runtime: Runtime | None = None,
) -> float:
    """Top-1 accuracy of `forward` over `batches`, computed on `runtime`'s device under its autocast."""
    runtime = runtime if runtime is not None else Runtime()
    correct = torch.zeros((), dtype=torch.long, device=runtime.device)
    total = 0
    for x, y in batches:
        with runtime.autocast():
            logits = forward(runtime.batch(x))
        correct += (logits.argmax(1) == runtime.labels(y)).sum()
        total += len(y)
    return correct.item() / max(1, total)
