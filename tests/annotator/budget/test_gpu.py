"""GPU hours: estimate a step from its earlier runs, refuse it when it would pass a cap, charge it once after."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from annotator.models import GpuPrice, LedgerEntry, Round
from annotator.selectors.budget import gpu_figures
from annotator.services.budget import (
    GpuEstimate,
    gpu_step_check,
    gpu_step_estimate,
    gpu_usage_charge,
    ledger_entry_record,
    ledger_entry_reverse,
)
from annotator.core.errors import BudgetExhausted, InvalidInput
from tests.factories import CampaignFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gpu_campaign(db):
    campaign = CampaignFactory(default_gpu_hour_price=Decimal("2.00"))
    GpuPrice.objects.create(campaign=campaign, device_type="H100", price_per_hour=Decimal("4.00"))
    return campaign


def charge(campaign, task_ref, seconds, step="train_reward", device="H100", **extra):
    return gpu_usage_charge(
        campaign=campaign, step=step, task_ref=task_ref, device_type=device, gpu_seconds=seconds, **extra
    )


def test_charge_is_priced_per_device_type_and_carries_the_step(gpu_campaign):
    round_ = Round.objects.create(campaign=gpu_campaign, number=3)
    entry = charge(gpu_campaign, "celery-1", Decimal("1800"), round=round_)
    entry.refresh_from_db()
    assert (entry.category, entry.amount, entry.quantity, entry.unit, entry.device_type, entry.round) == (
        "gpu", Decimal("2.0000"), Decimal("1800.0000"), "gpu_seconds", "H100", round_,
    )
    assert entry.reason == "GPU step: train_reward" and entry.task_ref == "celery-1"
    fallback = charge(gpu_campaign, "celery-2", 1234.5, device="A10")  # no GpuPrice row: the campaign default
    assert (fallback.quantity, fallback.amount) == (Decimal("1234.5000"), Decimal("0.6858"))
    figures = gpu_figures(campaign=gpu_campaign)
    assert (figures.used_hours, figures.cost) == (Decimal("3034.5") / 3600, Decimal("2.6858"))


def test_redelivered_task_is_charged_once(gpu_campaign):
    first = charge(gpu_campaign, "celery-7", 600)
    again = charge(gpu_campaign, "celery-7", 900)  # a redelivery reporting other seconds: the first stands
    assert again.pk == first.pk and LedgerEntry.objects.count() == 1


def test_estimate_is_the_mean_of_earlier_runs_same_device_first(gpu_campaign):
    assert gpu_step_estimate(campaign=gpu_campaign, step="train_reward", device_type="H100") == GpuEstimate(
        seconds=Decimal("0"), cost=Decimal("0"), runs=0
    )
    charge(gpu_campaign, "t1", 1800)
    charge(gpu_campaign, "t2", 3600)
    charge(gpu_campaign, "t3", 100, step="sample")  # another step does not count
    wrong = charge(gpu_campaign, "t4", 99_999)
    ledger_entry_reverse(entry_id=wrong.pk, recorded_by=StaffFactory(), reason="worker reported a bogus time")

    on_h100 = gpu_step_estimate(campaign=gpu_campaign, step="train_reward", device_type="H100")
    assert on_h100 == GpuEstimate(seconds=Decimal("2700.0000"), cost=Decimal("3.0000"), runs=2)
    on_a10 = gpu_step_estimate(campaign=gpu_campaign, step="train_reward", device_type="A10")
    assert on_a10 == GpuEstimate(seconds=Decimal("2700.0000"), cost=Decimal("1.5000"), runs=2)  # default price
    charge(gpu_campaign, "t5", 360, device="A10")
    assert gpu_step_estimate(campaign=gpu_campaign, step="train_reward", device_type="A10").seconds == Decimal("360")


def test_step_over_the_gpu_hour_budget_is_refused_with_the_overrun(gpu_campaign):
    gpu_campaign.gpu_hour_budget = Decimal("2")
    gpu_campaign.save()
    charge(gpu_campaign, "t1", 1800)
    charge(gpu_campaign, "t2", 3600)  # 1.5 h used; the mean run is 0.75 h
    with pytest.raises(BudgetExhausted) as refused:
        gpu_step_check(campaign=gpu_campaign, step="train_reward", device_type="H100")
    assert refused.value.status == 402
    assert refused.value.message == (
        "GPU step 'train_reward' on H100 was not started: its estimate of 0.7500 GPU-hours (3.0000 USD, the mean of "
        "2 earlier run(s)) would pass the GPU budget by 0.2500 h (0.5000 of 2.0000 h left)."
    )
    # A shorter step still fits, and is charged after it runs.
    estimate = gpu_step_check(campaign=gpu_campaign, step="sample", device_type="H100", estimate_seconds=1200)
    assert (estimate.seconds, estimate.cost, estimate.runs) == (Decimal("1200.0000"), Decimal("1.3333"), 0)
    ran = charge(gpu_campaign, "t3", Decimal("1187.25"), step="sample")
    assert ran.amount == Decimal("1.3192")
    assert gpu_figures(campaign=gpu_campaign).remaining_hours == Decimal("2") - Decimal("6587.25") / 3600


def test_step_over_the_money_budget_is_refused_with_the_overrun(gpu_campaign, staff):
    gpu_campaign.money_budget = Decimal("10.00")
    gpu_campaign.save()
    ledger_entry_record(campaign=gpu_campaign, category="contractor", amount="9", reason="invoice", recorded_by=staff)
    with pytest.raises(BudgetExhausted, match=r"would pass the money budget by 2\.0000 USD \(1\.0000 of 10\.0000 USD left\)"):
        gpu_step_check(campaign=gpu_campaign, step="optimize", device_type="H100", estimate_seconds=2700)
    within = gpu_step_check(campaign=gpu_campaign, step="optimize", device_type="A10", estimate_seconds=1800)
    assert within.cost == Decimal("1.0000")  # exactly what is left, on the cheaper device


def test_history_wins_over_a_smaller_caller_estimate(gpu_campaign):
    gpu_campaign.gpu_hour_budget = Decimal("1")
    gpu_campaign.save()
    charge(gpu_campaign, "t1", 2400)
    with pytest.raises(BudgetExhausted, match="0.6667 GPU-hours"):
        gpu_step_check(campaign=gpu_campaign, step="train_reward", device_type="H100", estimate_seconds=10)


def test_step_without_any_estimate_is_refused_only_when_nothing_is_left(gpu_campaign):
    gpu_campaign.gpu_hour_budget = Decimal("0.5")
    gpu_campaign.save()
    assert gpu_step_check(campaign=gpu_campaign, step="new", device_type="H100").seconds == 0
    charge(gpu_campaign, "t1", 1800, step="other")
    with pytest.raises(BudgetExhausted) as refused:
        gpu_step_check(campaign=gpu_campaign, step="new", device_type="H100")
    assert refused.value.message.endswith(
        "(0.0000 USD, no earlier runs and no estimate given) would pass the GPU budget (0.0000 of 0.5000 h left)."
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gpu_seconds": -1}, "between 0 and"),
        ({"gpu_seconds": float("inf")}, "finite"),
        ({"gpu_seconds": "lots"}, "must be a number"),
        ({"task_ref": " "}, "task_ref must name the task"),
        ({"step": ""}, "step must be a short name"),
        ({"device_type": ""}, "device_type must name the GPU"),
    ],
)
def test_bad_gpu_reports_are_refused(gpu_campaign, fields, message):
    arguments = {"step": "s", "task_ref": "t", "device_type": "H100", "gpu_seconds": 5} | fields
    with pytest.raises(InvalidInput, match=message):
        gpu_usage_charge(campaign=gpu_campaign, **arguments)
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_task_charge_once():
    campaign = CampaignFactory()
    barrier = threading.Barrier(4)
    charged: list[int] = []

    def deliver():
        try:
            barrier.wait()
            charged.append(charge(campaign, "celery-42", 3600, device="T4").pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(charged) == 4 and len(set(charged)) == 1
    assert list(LedgerEntry.objects.values_list("amount", flat=True)) == [Decimal("2.0000")]
