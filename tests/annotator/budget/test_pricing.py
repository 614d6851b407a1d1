"""Pay models: per judgement, hourly on recorded time (capped per item), platform fee, simulated labelers, AI judges.

Pure arithmetic on unsaved rows: no database needed.
"""

from decimal import Decimal

import pytest

from annotator.models import Campaign, LabelerKind, LabelerProfile, PayModel
from annotator.core.pricing import item_price


def campaign(**fields) -> Campaign:
    defaults = {"pay_per_judgement": Decimal("0.10"), "hourly_rate": Decimal("18.00"), "max_paid_seconds_per_item": 120}
    return Campaign(**(defaults | fields))


def profile(**fields) -> LabelerProfile:
    return LabelerProfile(**({"kind": LabelerKind.HUMAN} | fields))


def test_per_judgement_price_with_platform_fee():
    price = item_price(campaign=campaign(platform_fee_percent=Decimal("12.5")), profile=profile(), milliseconds=9000)
    assert (price.pay, price.fee, price.total, price.paid_seconds) == (
        Decimal("0.1000"), Decimal("0.0125"), Decimal("0.1125"), None,
    )


@pytest.mark.parametrize(
    ("milliseconds", "pay", "fee", "paid_seconds"),
    [
        (40_000, "0.2000", "0.0200", "40"),  # 18/h for 40 s
        (33_333, "0.1667", "0.0167", "33.333"),  # rounded half up to the ten-thousandth
        (600_000, "0.6000", "0.0600", "120"),  # an idle tab is paid the per-item cap, not ten minutes
        (0, "0.0000", "0.0000", "0"),
        (None, "0.6000", "0.0600", "120"),  # at claim time: the most the item can cost, which is reserved
    ],
)
def test_hourly_pay_on_recorded_time_is_capped_per_item(milliseconds, pay, fee, paid_seconds):
    hourly = campaign(pay_model=PayModel.HOURLY, platform_fee_percent=Decimal("10"))
    price = item_price(campaign=hourly, profile=profile(), milliseconds=milliseconds)
    assert (price.pay, price.fee, price.paid_seconds) == (Decimal(pay), Decimal(fee), Decimal(paid_seconds))


def test_labelers_own_rates_win_over_the_campaigns():
    per_item = campaign(pay_model=PayModel.HOURLY)
    own_price = item_price(campaign=per_item, profile=profile(pay_per_judgement=Decimal("0.25")), milliseconds=60_000)
    assert (own_price.pay, own_price.paid_seconds) == (Decimal("0.2500"), None)
    own_hourly = item_price(campaign=campaign(), profile=profile(hourly_rate=Decimal("36")), milliseconds=10_000)
    assert (own_hourly.pay, own_hourly.paid_seconds) == (Decimal("0.1000"), Decimal("10"))


def test_ai_judge_costs_its_api_price_per_call_and_no_fee():
    judge = profile(kind=LabelerKind.AI_JUDGE, api_cost_per_call=Decimal("0.0031"))
    price = item_price(campaign=campaign(platform_fee_percent=Decimal("20")), profile=judge, milliseconds=500)
    assert (price.pay, price.fee) == (Decimal("0.0031"), Decimal("0"))


def test_simulated_labeler_with_a_zero_rate_costs_nothing():
    gold_model = profile(kind=LabelerKind.SIMULATED, pay_per_judgement=Decimal("0"))
    price = item_price(campaign=campaign(platform_fee_percent=Decimal("10")), profile=gold_model, milliseconds=50)
    assert price.total == Decimal("0")
