"""The shared torch training loop: epochs, mixed precision on GPU, early stopping on a validation metric.

A ``TorchRecommender`` subclass implements ``_setup`` (build parameters from the data with a seeded
generator), ``_train_epoch`` (one pass, returns its losses) and ``_modules``; the base class runs the loop,
keeps the best epoch's weights and restores them.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from typing import Any
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from genre_core.evaluation.evaluate import EvalSet, evaluate
from genre_core.device import autocast_dtype
from genre_core.models.base import Recommender
from genre_core.models.data import TrainData


@dataclass
class FitReport:
    """What a fit did: seconds, one record per epoch (epoch, losses, valid_<metric>), the best epoch."""

    fit_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_valid: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # other numbers worth logging (nested dicts of floats)


class _Timer:
    seconds: float = 0.0


@contextlib.contextmanager
def timed() -> Iterator[_Timer]:
    """``with timed() as t: ...`` then ``t.seconds``."""
    t = _Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


class TorchRecommender(Recommender):
    """Base of models trained by gradient steps, epoch by epoch."""

    iterative = True

    def __init__(self, idmap, config=None, seed: int = 0) -> None:  # noqa: ANN001
        super().__init__(idmap, config, seed)
        self.amp = False
        self._scaler: torch.amp.GradScaler | None = None
        self._amp_dtype: torch.dtype | None = None

    # subclasses ------------------------------------------------------------------------------------------
    def _setup(self, data: TrainData, gen: torch.Generator) -> None:
        raise NotImplementedError

    def _train_epoch(self, gen: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def _modules(self) -> list[torch.nn.Module]:
        return []

    # shared ------------------------------------------------------------------------------------------------
    def train_mode(self, on: bool) -> None:
        for m in self._modules():
            m.train(on)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to bf16/fp16 on CUDA when ``amp`` is on; a no-op on CPU."""
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward + optimizer step, through a GradScaler under fp16."""
        optimizer.zero_grad(set_to_none=True)
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            self._scaler.step(optimizer)
            self._scaler.update()
        else:
            loss.backward()
            optimizer.step()

    def fit(
        self,
        data: TrainData,
        valid: EvalSet | None = None,
        *,
        epochs: int | None = None,
        metric: str = "ndcg@10",
        eval_every: int = 1,
        amp: bool = True,
        progress: bool = False,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> FitReport:
        """Train for up to ``epochs`` (default: ``config.epochs``). With ``valid``, evaluate ``metric``
        every ``eval_every`` epochs, stop after ``config.patience`` evaluations without improvement and
        restore the best weights; ``on_epoch`` gets each epoch's record."""
        report = FitReport()
        with timed() as t:
            gen = torch.Generator().manual_seed(self.seed)
            self._amp_dtype = autocast_dtype(self.device, "auto") if amp else None
            self._scaler = torch.amp.GradScaler("cuda") if self._amp_dtype == torch.float16 else None
            self.set_histories(*data.histories())
            self._setup(data, gen)
            max_epochs = int(epochs or self.config.epochs)
            patience = int(self.config.patience)
            best, best_state, bad = float("-inf"), None, 0
            bar = tqdm(range(1, max_epochs + 1), desc=f"train {self.name}", disable=not progress, leave=False)
            for epoch in bar:
                self.train_mode(True)
                record: dict[str, float] = {"epoch": epoch, **self._train_epoch(gen)}
                self.train_mode(False)
                stop = False
                if valid is not None and valid.users.size and epoch % eval_every == 0:
                    value = evaluate(self, valid, [int(metric.split("@")[1])] if "@" in metric else [10],
                                     with_auc=metric == "auc")[metric]
                    record[f"valid_{metric}"] = float(value)
                    if value > best + 1e-6:
                        best, bad, report.best_epoch = value, 0, epoch
                        best_state = copy.deepcopy(self.state())
                    else:
                        bad += 1
                        stop = bad >= patience
                report.history.append(record)
                bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
                if on_epoch is not None:
                    on_epoch(record)
                if stop:
                    break
            if best_state is not None:
                self.load_state(best_state, self.meta())
                self.to(self.device)
                report.best_valid = best
            else:
                report.best_epoch = len(report.history)
            self.train_mode(False)
        report.fit_s = t.seconds
        return report
