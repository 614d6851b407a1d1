"""Account pages: password reset and change through Django's own views, and a labeler's own work and pay."""

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from annotator.models import CampaignMembership, CampaignRole, LedgerCategory, LedgerEntry, TaskKind
from annotator.selectors.budget import labeler_earnings
from annotator.selectors.earnings import work_by_campaign
from annotator.services.assignments import assignment_claim
from annotator.services.budget import ledger_entry_record, ledger_entry_reverse
from annotator.services.judgements import judgement_submit, rating_submit
from annotator.services.sign_in import FAILURES_ALLOWED
from tests.factories import PASSWORD, CampaignFactory, ComparisonFactory, LabelerFactory, RatingItemFactory

LOGIN_URL = reverse("login")
NEW_PASSWORD = "a-brand-new-pass-77"
RESET_LINK = re.compile(r"https?://testserver(/accounts/reset/[^\s]+/[^\s]+/)")


def logs_in(username: str, password: str) -> bool:
    response = Client().post(LOGIN_URL, {"username": username, "password": password})
    return response.status_code == 302


# Password reset and change


def test_the_login_page_links_to_password_reset(db, client):
    body = client.get(LOGIN_URL).content.decode()
    assert f'href="{reverse("password_reset")}"' in body and "Forgot your password?" in body


def test_password_reset_mails_a_link_that_sets_a_new_password(db, client):
    labeler = LabelerFactory(email="ann@example.org")
    page = client.get(reverse("password_reset"))
    assert page.status_code == 200 and "Reset your password" in page.content.decode()

    response = client.post(reverse("password_reset"), {"email": "ann@example.org"})
    assert response["Location"] == reverse("password_reset_done")
    [message] = mail.outbox
    assert message.to == ["ann@example.org"] and labeler.username in message.body
    [path] = RESET_LINK.findall(message.body)

    form_page = client.get(path, follow=True)  # Django swaps the token for a session and a set-password URL
    assert form_page.status_code == 200 and form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == reverse("password_reset_complete")
    assert "Your password is set" in client.get(done["Location"]).content.decode()

    assert logs_in(labeler.username, NEW_PASSWORD) and not logs_in(labeler.username, PASSWORD)
    assert "does not work" in client.get(path, follow=True).content.decode()  # a link works once


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(db, client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response["Location"] == reverse("password_reset_done") and mail.outbox == []


def test_a_password_reset_lifts_a_sign_in_lock(db, client):
    labeler = LabelerFactory(email="bo@example.org")
    for _ in range(FAILURES_ALLOWED):
        logs_in(labeler.username, "guess")
    assert not logs_in(labeler.username, PASSWORD)  # locked
    client.post(reverse("password_reset"), {"email": "bo@example.org"})
    [path] = RESET_LINK.findall(mail.outbox[0].body)
    form_page = client.get(path, follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert logs_in(labeler.username, NEW_PASSWORD)


def test_a_logged_in_user_changes_their_password(db, client, labeler):
    assert client.get(reverse("password_change")).status_code == 302  # login first
    client.force_login(labeler)
    assert f'href="{reverse("password_change")}"' in client.get(reverse("my_work")).content.decode()  # in the nav
    short = client.post(reverse("password_change"),
                        {"old_password": PASSWORD, "new_password1": "short1", "new_password2": "short1"})
    assert short.status_code == 200 and "too short" in short.content.decode()
    response = client.post(reverse("password_change"),
                           {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response["Location"] == reverse("password_change_done")
    assert client.get(reverse("my_work")).status_code == 200  # still logged in
    assert logs_in(labeler.username, NEW_PASSWORD)


# My work


def answer(labeler, campaign, *, milliseconds: int, rating: bool = False):
    lease = assignment_claim(labeler=labeler, campaign=campaign)
    if rating:
        rating_submit(labeler=labeler, assignment_id=lease.pk, value="positive", milliseconds=milliseconds)
    else:
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=milliseconds)
    return lease


@pytest.fixture
def worked(staff):
    """A labeler with work in three campaigns, a member of two of them (and a manager of a fourth):

    - pairwise (USD, 0.10 + 10 % fee): 3 judgements of 10, 20 and 30 s; the first one's charge reversed; a bonus of
      1.50: earned 0.20 for answers + 1.50 = 1.70 (the fees are the platform's);
    - ratings (EUR, 0.25, no fee): 2 ratings of 5 s: 0.50;
    - left (USD): 1 judgement, then the membership ended: not shown;
    another labeler's work in the pairwise campaign is not theirs.
    """
    labeler, other = LabelerFactory(username="worker"), LabelerFactory()
    pairwise = CampaignFactory(name="pairwise", title="A pairwise", platform_fee_percent=Decimal("10"))
    ratings = CampaignFactory(name="ratings", title="B ratings", task_kind=TaskKind.RATING, currency="EUR",
                              pay_per_judgement=Decimal("0.25"))
    left = CampaignFactory(name="left", title="C left")
    managed = CampaignFactory(name="managed", title="D managed")
    ComparisonFactory.create_batch(4, campaign=pairwise)
    RatingItemFactory.create_batch(2, campaign=ratings)
    ComparisonFactory.create_batch(1, campaign=left)
    for campaign in (pairwise, ratings, left):
        CampaignMembership.objects.create(campaign=campaign, user=labeler)
    CampaignMembership.objects.create(campaign=pairwise, user=other)
    CampaignMembership.objects.create(campaign=managed, user=labeler, role=CampaignRole.MANAGER)

    first = answer(labeler, pairwise, milliseconds=10_000)
    answer(labeler, pairwise, milliseconds=20_000)
    answer(labeler, pairwise, milliseconds=30_000)
    answer(other, pairwise, milliseconds=99_000)
    charge = LedgerEntry.objects.get(assignment=first, category=LedgerCategory.LABELING)
    ledger_entry_reverse(entry_id=charge.pk, recorded_by=staff, reason="duplicate answer")
    ledger_entry_record(campaign=pairwise, category=LedgerCategory.OTHER, amount="1.50", labeler=labeler,
                        reason="bonus for careful rationales", recorded_by=staff)
    ledger_entry_record(campaign=pairwise, category=LedgerCategory.OTHER, amount="9.00", labeler=other,
                        reason="someone else's bonus", recorded_by=staff)
    for _ in range(2):
        answer(labeler, ratings, milliseconds=5_000, rating=True)
    answer(labeler, left, milliseconds=1_000)
    CampaignMembership.objects.filter(campaign=left, user=labeler).delete()
    return labeler, (pairwise, ratings, left, managed)


def test_my_work_shows_answers_time_and_decimal_pay_per_campaign_i_am_in(client, worked):
    labeler, (pairwise, ratings, left, managed) = worked
    client.force_login(labeler)
    response = client.get(reverse("my_work"))
    assert response.status_code == 200
    rows = {row.campaign.name: row for row in response.context["rows"]}
    assert list(rows) == ["pairwise", "ratings", "managed"]  # by title; "left" is gone with its membership
    figures = {
        name: (row.role, row.judgements, row.ratings, row.milliseconds, row.for_answers, row.other_pay, row.earned)
        for name, row in rows.items()
    }
    assert figures == {
        "pairwise": ("labeler", 3, 0, 60_000, Decimal("0.2000"), Decimal("1.5000"), Decimal("1.7000")),
        "ratings": ("labeler", 0, 2, 10_000, Decimal("0.5000"), Decimal("0"), Decimal("0.5000")),
        "managed": ("manager", 0, 0, 0, Decimal("0"), Decimal("0"), Decimal("0")),
    }
    assert all(isinstance(value, Decimal) for row in rows.values() for value in (row.earned, row.for_answers))
    assert response.context["totals"] == {"EUR": Decimal("0.5000"), "USD": Decimal("1.7000")}

    body = response.content.decode()
    assert "1.7000 USD" in body and "0.5000 EUR" in body and "0 h 01 min 00 s" in body
    assert "C left" not in body and "9.00" not in body
    assert reverse("members:campaign", args=["managed"]) in body  # a manager's way to the members page


def test_my_work_pay_agrees_with_the_budget_pages_rule(worked):
    labeler, campaigns = worked
    mine = {row.campaign.pk: row.earned for row in work_by_campaign(user=labeler)}
    for campaign in campaigns[:2]:
        [budget_row] = [row for row in labeler_earnings(campaign=campaign) if row.user_id == labeler.pk]
        assert mine[campaign.pk] == budget_row.earned


def test_my_work_needs_a_login_and_shows_nothing_to_a_newcomer(db, client):
    url = reverse("my_work")
    assert client.get(url)["Location"] == f"{LOGIN_URL}?next={url}"
    client.force_login(LabelerFactory())
    assert "not a member of any campaign" in client.get(url).content.decode()
