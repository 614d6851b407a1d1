from dataclasses import dataclass
from decimal import Decimal

import pytest

from annotator.models import Campaign, LabelerKind, Round
from annotator.services.assignments import assignment_claim
from annotator.services.budget import gpu_usage_charge, ledger_entry_record
from annotator.services.judgements import judgement_submit
from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory


@dataclass
class FundedCampaign:
    campaign: Campaign
    fast: object  # labeler: 3 judgements, 10 s each
    slow: object  # labeler: 2 judgements, 60 s each (underpaid against the campaign's 18/h)
    holder: object  # labeler holding one live lease
    staff: object


@pytest.fixture
def funded_campaign(staff) -> FundedCampaign:
    """Budget 10.00 USD and 2 GPU-hours; 0.10 a judgement plus a 10% fee; two rounds.

    Spent: 5 judgements x 0.11 = 0.55, a 1800 s GPU run at 2.00/h = 1.00, a contractor invoice of 2.00:
    3.55 in all. Reserved: one live lease, 0.11. Remaining: 6.34.
    """
    campaign = CampaignFactory(
        money_budget=Decimal("10.00"), gpu_hour_budget=Decimal("2"), pay_per_judgement=Decimal("0.10"),
        platform_fee_percent=Decimal("10"), hourly_rate=Decimal("18.00"), default_gpu_hour_price=Decimal("2.00"),
    )
    first, second = (Round.objects.create(campaign=campaign, number=n) for n in (1, 2))
    ComparisonFactory.create_batch(3, campaign=campaign, round=first, priority=1)
    ComparisonFactory.create_batch(4, campaign=campaign, round=second)
    fast, slow, holder = (LabelerFactory(username=name, campaigns=[campaign]) for name in ("fast", "slow", "holder"))
    for choice in ("a", "tie", "both_bad"):
        lease = assignment_claim(labeler=fast, campaign=campaign)
        judgement_submit(labeler=fast, assignment_id=lease.pk, choice=choice, milliseconds=10_000)
    for choice in ("a", "b"):
        lease = assignment_claim(labeler=slow, campaign=campaign)
        judgement_submit(labeler=slow, assignment_id=lease.pk, choice=choice, milliseconds=60_000)
    assignment_claim(labeler=holder, campaign=campaign)
    gpu_usage_charge(
        campaign=campaign, round=first, step="train_reward", task_ref="task-1", device_type="H100", gpu_seconds=1800
    )
    ledger_entry_record(
        campaign=campaign, category="contractor", amount="2.00", reason="=HYPERLINK(\"x\") invoice 12", recorded_by=staff
    )
    return FundedCampaign(campaign=campaign, fast=fast, slow=slow, holder=holder, staff=staff)


@pytest.fixture
def ai_judge(db):
    return LabelerFactory(username="judge", labeler__kind=LabelerKind.AI_JUDGE, labeler__api_cost_per_call=Decimal("0.002"))
