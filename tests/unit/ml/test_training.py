"""The one training loop (ml.components.training) and the validation split it uses (ml.data.splits)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from ml.base import Sample
from ml.components.training import Trainer, epoch_batches, lr_factor, pixel_f1_max
from ml.config import ConfigError, TrainingConfig
from ml.data.splits import hold_out_validation, is_anomalous


def _config(**overrides) -> TrainingConfig:
    return TrainingConfig.from_dict({"warmup_steps": 0, **overrides})


def _samples(normal: int, anomalous: int) -> list[Sample]:
    out = []
    for i in range(normal):
        out.append(Sample(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), 0, f"n{i}"))
    for i in range(anomalous):
        mask = np.zeros((4, 4), np.uint8)
        mask[1, 1] = 255
        out.append(Sample(np.zeros((4, 4, 3), np.uint8), mask, 1, f"a{i}"))
    return out


# --- the validation split ---------------------------------------------------------------

def test_held_back_split_is_stratified_disjoint_and_seeded():
    samples = _samples(40, 20)
    train, val, source = hold_out_validation(samples, None, fraction=0.15, minimum=4, seed=7)
    assert source == "held back"
    assert len(val) == 9 and len(train) == 51  # 15% of 60
    names_train, names_val = {s.name for s in train}, {s.name for s in val}
    assert not names_train & names_val and len(names_train | names_val) == 60
    kinds = [is_anomalous(s) for s in val]
    assert 0 < sum(kinds) < len(kinds)  # both normal and anomalous images validate
    assert sum(kinds) == 3  # proportional: a third of the images are anomalous
    again = hold_out_validation(samples, None, fraction=0.15, minimum=4, seed=7)[1]
    assert [s.name for s in again] == [s.name for s in val]
    other = hold_out_validation(samples, None, fraction=0.15, minimum=4, seed=8)[1]
    assert [s.name for s in other] != [s.name for s in val]


def test_at_least_the_minimum_is_held_back_and_a_rare_kind_is_represented():
    train, val, _ = hold_out_validation(_samples(18, 2), None, fraction=0.15, minimum=4, seed=0)
    assert len(val) == 4 and len(train) == 16
    assert sum(is_anomalous(s) for s in val) == 1


def test_too_few_images_hold_nothing_back_and_the_jobs_own_validation_wins():
    samples = _samples(5, 2)
    train, val, source = hold_out_validation(samples, None, fraction=0.15, minimum=4, seed=0)
    assert (len(train), len(val), source) == (7, 0, "none")
    job_val = _samples(1, 1)
    train, val, source = hold_out_validation(_samples(40, 10), job_val, seed=0)
    assert source == "job" and val == job_val and len(train) == 50


# --- the loop ----------------------------------------------------------------------------

def _regression(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return x, y


def test_budget_of_steps_is_respected_and_reported_as_steps_and_epochs():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    x, y = _regression()
    calls = []
    trainer = Trainer(_config(max_steps=37, val_every=10, learning_rate=0.05), model, device=torch.device("cpu"), steps_per_epoch=8,
                      progress=lambda stage, fraction, metrics=None: calls.append((stage, fraction, metrics)))
    batches = epoch_batches(64, 8, torch.Generator().manual_seed(0))

    def step(i):
        idx = next(batches)
        return ((model(x[idx]) - y[idx]) ** 2).mean()

    report = trainer.fit(step)
    assert report.steps == 37 and report.epochs == pytest.approx(37 / 8, abs=1e-3)
    assert report.stopped == "budget"
    assert len(calls) == 37 and calls[-1][1] == 1.0
    fractions = [f for _, f, _ in calls]
    assert fractions == sorted(fractions)
    assert all(m["eta_seconds"] >= 0 for _, _, m in calls)
    assert [p[0] for p in report.curves["train_loss"]] == [10, 20, 30, 37]
    assert report.curves["train_loss"][-1][1] < report.curves["train_loss"][0][1]


def test_budget_of_seconds_stops_the_training():
    model = nn.Linear(4, 1)
    x, y = _regression()

    def slow_step(i):
        time.sleep(0.02)
        return ((model(x) - y) ** 2).mean()

    report = Trainer(_config(max_steps=100000, max_seconds=1.0), model, device=torch.device("cpu"), steps_per_epoch=1).fit(slow_step)
    assert report.stopped == "time"
    assert 1.0 <= report.seconds < 2.0
    assert report.steps < 100


def test_early_stopping_restores_the_best_weights():
    """A validation measure that gets worse after step 20: training stops after `patience`
    rounds without improvement and the weights of step 20 come back."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    snapshots = {}

    def step(i):
        # Pushes the weight up by about lr each step.
        return -model.weight.sum()

    def validate():
        snapshots[trainer.step] = float(model.weight.detach())
        return -abs(trainer.step - 20)  # best at step 20

    trainer = Trainer(_config(max_steps=200, val_every=5, patience=3, learning_rate=0.1, grad_clip=0.0),
                      model, device=torch.device("cpu"), steps_per_epoch=1, measure="score", higher_is_better=True)
    report = trainer.fit(step, validate)
    assert report.stopped == "early stop"
    assert report.best_step == 20 and report.steps == 35  # three worse rounds after 20: 25, 30, 35
    assert float(model.weight.detach()) == pytest.approx(snapshots[20])
    assert float(model.weight.detach()) != pytest.approx(snapshots[35])
    assert [p[0] for p in report.curves["validation"]] == [5, 10, 15, 20, 25, 30, 35]


def test_cpu_training_is_repeatable_for_a_seed():
    def run():
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        x, y = _regression(1)
        batches = epoch_batches(64, 16, torch.Generator().manual_seed(3))

        def step(i):
            idx = next(batches)
            return ((model(x[idx]) - y[idx]) ** 2).mean()

        Trainer(_config(max_steps=30, warmup_steps=5), model, device=torch.device("cpu"), steps_per_epoch=4).fit(step)
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


def test_diverging_loss_fails_with_a_message():
    model = nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="diverged at step 1"):
        Trainer(_config(max_steps=5), model, device=torch.device("cpu"), steps_per_epoch=1).fit(
            lambda i: model.weight.sum() * float("nan")
        )


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    trainer = Trainer(_config(max_steps=1, grad_clip=0.5, learning_rate=1.0), model, device=torch.device("cpu"), steps_per_epoch=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    trainer.optimizers = {"model": optimizer}
    for group in optimizer.param_groups:
        group["initial_lr"] = 1.0
    trainer.fit(lambda i: -1000.0 * model.weight.sum())
    assert float(model.weight.detach()) == pytest.approx(0.5)


def test_warmup_then_cosine_schedule():
    assert lr_factor(0, total=100, warmup=10, schedule="cosine") == pytest.approx(0.1)
    assert lr_factor(9, total=100, warmup=10, schedule="cosine") == pytest.approx(1.0)
    assert lr_factor(10, total=100, warmup=10, schedule="cosine") == pytest.approx(1.0)
    assert lr_factor(100, total=100, warmup=10, schedule="cosine") == pytest.approx(0.01)
    assert lr_factor(55, total=100, warmup=10, schedule="cosine") == pytest.approx(0.505, abs=1e-3)
    assert lr_factor(80, total=100, warmup=10, schedule="constant") == 1.0


def test_pixel_f1_max_matches_a_hand_computed_case():
    probs = torch.tensor([0.9, 0.8, 0.3, 0.1])
    truth = torch.tensor([1, 0, 1, 0])
    # Thresholds: >=0.9 -> P=1, R=.5, F1=.667; >=0.8 -> .5/.5 -> .5; >=0.3 -> P=2/3, R=1 -> 0.8; all -> .667
    assert pixel_f1_max(probs, truth) == pytest.approx(0.8)
    assert pixel_f1_max(probs, torch.zeros(4)) == 0.0


def test_training_config_refuses_bad_budgets_by_name():
    with pytest.raises(ConfigError) as err:
        TrainingConfig.from_dict({"max_steps": 0})
    assert err.value.key == "max_steps"
    with pytest.raises(ConfigError) as err:
        TrainingConfig.from_dict({"val_fraction": 0.9})
    assert err.value.key == "val_fraction"
