"""Fifty labelers claiming and submitting at once against a budget that covers fewer items than they try."""

import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from annotator.models import Judgement, LedgerCategory, LedgerEntry
from annotator.selectors.budget import ledger_prefix_check
from annotator.services.assignments import assignment_claim
from annotator.core.errors import BudgetExhausted
from annotator.services.judgements import judgement_submit
from tests.factories import CampaignFactory, ComparisonFactory, LabelerFactory

THREADS = 50
PAY, FEE = Decimal("0.0700"), Decimal("0.0070")  # 0.077 an item: the budget is not a multiple of it
BUDGET = Decimal("2.00")  # 25 items cost 1.925; a 26th would make 2.002


@pytest.mark.django_db(transaction=True)
def test_fifty_labelers_never_push_spending_past_the_budget():
    assert connection.vendor == "postgresql"
    campaign = CampaignFactory(money_budget=BUDGET, pay_per_judgement=PAY, platform_fee_percent=Decimal("10"))
    ComparisonFactory.create_batch(60, campaign=campaign)
    labelers = LabelerFactory.create_batch(THREADS, campaigns=[campaign])
    barrier = threading.Barrier(THREADS)
    accepted: list[int] = []  # assignment ids whose judgement was accepted
    refusals: list[str] = []
    unexpected: list[BaseException] = []

    def label(user):
        try:
            barrier.wait()
            while True:  # until the budget refuses this labeler
                try:
                    lease = assignment_claim(labeler=user, campaign=campaign)
                except BudgetExhausted as exc:
                    refusals.append(exc.message)
                    break
                assert lease is not None, "items ran out before the money did"
                judgement_submit(
                    labeler=user, assignment_id=lease.pk, choice=random.choice("ab"), milliseconds=1500
                )
                accepted.append(lease.pk)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            unexpected.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=label, args=(user,)) for user in labelers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert unexpected == []
    assert not any(thread.is_alive() for thread in threads)
    entries = list(LedgerEntry.objects.filter(campaign=campaign))
    total = sum((e.amount for e in entries), Decimal("0"))
    assert total <= BUDGET
    assert len(accepted) == 25 and total == 25 * (PAY + FEE)  # as much as fits, and not a cent more
    assert len(refusals) == THREADS and all("paused for budget" in message for message in refusals)

    judged = sorted(Judgement.objects.filter(assignment__comparison__campaign=campaign).values_list("assignment_id", flat=True))
    assert judged == sorted(accepted)
    charges = Counter((e.assignment_id, e.category, e.amount) for e in entries)
    assert charges == Counter(
        {(a, LedgerCategory.LABELING, PAY): 1 for a in accepted} | {(a, LedgerCategory.PLATFORM_FEE, FEE): 1 for a in accepted}
    )
    # The claims folded the charges written between them into the campaign's memoised sum, none missed or twice.
    check = ledger_prefix_check(campaign=campaign)
    assert check.ok and check.entries > 0, check
