"""Per-campaign membership decides who sees what: a labeler sees, claims and answers only in the campaigns they are
a member of as a labeler (anything else answers as a campaign that does not exist); a manager runs their campaigns'
budget, rounds and evaluation pages and API, and nothing of the others; staff see everything and label only where
they are labelers too."""

import threading

import psycopg
import pytest
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils.html import escape
from django.utils import timezone

from annotator.core.errors import AccessDenied, NotFound
from annotator.models import Assignment, CampaignRole, Judgement, LedgerEntry
from annotator.selectors.campaigns import campaigns_for_labeler, campaigns_managed
from annotator.services.access import campaign_get_for_labeler, campaign_get_for_manager
from annotator.services.assignments import assignment_claim, assignment_next, campaign_and_live_leases
from annotator.services.judgements import judgement_submit
from tests.annotator.api.conftest import client_with_token
from tests.factories import (
    AssignmentFactory,
    CampaignFactory,
    ComparisonFactory,
    LabelerFactory,
    LabelerProfileFactory,
    MembershipFactory,
    StaffFactory,
    UserFactory,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def stranger(db):
    """A labeler who is a member of no campaign."""
    return LabelerFactory(username="stranger")


def no_campaign(name: str) -> str:
    return f"No active campaign {name!r}."


def shown(text: str) -> str:
    """`text` as a page shows it."""
    return str(escape(text))


# --- labelers: the web pages ------------------------------------------------------------------------------------


def test_a_labeler_lists_and_opens_only_the_campaigns_they_label(client, labeler, stranger, campaign):
    managed = CampaignFactory(title="Managed here")
    MembershipFactory(campaign=managed, user=labeler, role=CampaignRole.MANAGER)
    client.force_login(stranger)
    assert campaign.title not in client.get(reverse("labeling:campaign_list")).content.decode()
    for page in ("labeling:instructions", "labeling:label"):
        response = client.get(reverse(page, args=[campaign.name]))
        assert response.status_code == 404 and shown(no_campaign(campaign.name)) in response.content.decode(), page
    unknown = client.get(reverse("labeling:label", args=["no-such-campaign"]))
    assert unknown.status_code == 404 and shown(no_campaign("no-such-campaign")) in unknown.content.decode()
    assert not Assignment.objects.exists()

    client.force_login(labeler)
    html = client.get(reverse("labeling:campaign_list")).content.decode()
    assert campaign.title in html and reverse("labeling:instructions", args=[campaign.name]) in html
    assert reverse("labeling:instructions", args=[managed.name]) not in html  # a manager does not label it
    assert client.get(reverse("labeling:label", args=[managed.name])).status_code == 404
    assert client.get(reverse("labeling:label", args=[campaign.name])).status_code == 200
    assert Assignment.objects.filter(labeler=labeler).count() == 2  # the current item and the next


def test_a_non_member_cannot_answer_and_a_member_who_left_cannot_either(client, labeler, stranger, campaign):
    held = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=stranger)  # e.g. leased before leaving
    client.force_login(stranger)
    url = reverse("labeling:item_answer", args=[campaign.name, held.pk])
    response = client.post(url, {"answer": "left", "milliseconds": "900"}, **HTMX)
    assert response.status_code == 404 and shown(no_campaign(campaign.name)) in response.content.decode()

    lease = assignment_next(labeler=labeler, campaign=campaign)[0]
    labeler.campaign_memberships.get(campaign=campaign).delete()
    client.force_login(labeler)
    response = client.post(reverse("labeling:item_answer", args=[campaign.name, lease.pk]),
                           {"answer": "left", "milliseconds": "900"}, **HTMX)
    assert response.status_code == 404
    with pytest.raises(NotFound, match=f"No assignment {lease.pk} for you"):  # by another campaign's page, or the API
        judgement_submit(labeler=labeler, assignment_id=lease.pk, choice="a", milliseconds=900)
    assert not Judgement.objects.exists() and not LedgerEntry.objects.exists()


def test_a_member_answers_on_the_page(client, labeler, campaign):
    client.force_login(labeler)
    client.get(reverse("labeling:label", args=[campaign.name]))
    lease = Assignment.objects.filter(labeler=labeler).earliest("leased_at", "pk")
    response = client.post(reverse("labeling:item_answer", args=[campaign.name, lease.pk]),
                           {"answer": "tie", "milliseconds": "900"}, **HTMX)
    assert response.status_code == 200
    assert Judgement.objects.get(assignment=lease).choice == "tie"


# --- labelers: the API ------------------------------------------------------------------------------------------


def test_the_api_answers_a_non_member_as_for_a_missing_campaign(labeler, stranger, campaign):
    api, outsider = client_with_token(labeler), client_with_token(stranger)
    assert outsider.get("/api/campaigns/").json() == []
    missing = outsider.get("/api/campaigns/no-such-campaign/next/").json()
    for path in ("next", "stats"):
        response = outsider.get(f"/api/campaigns/{campaign.name}/{path}/")
        assert response.status_code == 404, path
        assert response.json() == {"detail": no_campaign(campaign.name), "code": "not_found"}
    assert missing == {"detail": no_campaign("no-such-campaign"), "code": "not_found"}
    by_id = outsider.get(f"/api/campaigns/{campaign.pk}/next/")
    assert by_id.status_code == 404 and by_id.json()["detail"] == no_campaign(str(campaign.pk))
    held = AssignmentFactory(comparison=campaign.comparisons.first(), labeler=stranger)
    answer = outsider.post(f"/api/assignments/{held.pk}/judgement/", {"choice": "first", "milliseconds": 5},
                           format="json")
    assert answer.status_code == 404 and answer.json()["detail"] == f"No assignment {held.pk} for you."
    assert Assignment.objects.filter(labeler=stranger).count() == 1 and not Judgement.objects.exists()

    assert [c["name"] for c in api.get("/api/campaigns/").json()] == [campaign.name]
    item = api.get(f"/api/campaigns/{campaign.name}/next/")
    assert item.status_code == 200
    assert api.get(f"/api/campaigns/{campaign.name}/stats/").json()["me"]["done_total"] == 0
    answer = api.post(f"/api/assignments/{item.json()['assignment_id']}/judgement/",
                      {"choice": "first", "milliseconds": 5}, format="json")
    assert answer.status_code == 201


def test_staff_label_only_where_they_are_labelers(campaign):
    staff = StaffFactory()
    LabelerProfileFactory(user=staff)
    api = client_with_token(staff)
    assert api.get(f"/api/campaigns/{campaign.name}/next/").status_code == 404
    assert api.get(f"/api/campaigns/{campaign.name}/stats/").status_code == 200  # staff read any campaign
    MembershipFactory(campaign=campaign, user=staff)
    assert api.get(f"/api/campaigns/{campaign.name}/next/").status_code == 200


def test_the_claim_refuses_a_non_member_before_the_campaign_lock(stranger, campaign):
    with pytest.raises(NotFound, match=no_campaign(campaign.name)):
        assignment_claim(labeler=stranger, campaign=campaign)
    with connection.cursor() as cursor:
        now = timezone.now()
        cursor.execute("SELECT refused, lease_id FROM annotator_claim(%s, %s, false, %s, %s, 0.1)",
                       [campaign.pk, stranger.pk, now, now])
        assert cursor.fetchall() == [("not_member", None)]
        cursor.execute("SELECT refused, lease_id FROM annotator_claim(%s, %s, false, %s, %s, 0.1)",
                       [10**12, stranger.pk, now, now])  # no such campaign: the same answer
        assert cursor.fetchall() == [("not_member", None)]
    assert not Assignment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_non_member_never_waits_for_the_campaign_lock():
    labeler, stranger = LabelerFactory(), LabelerFactory()
    campaign = CampaignFactory(labelers=[labeler])
    ComparisonFactory(campaign=campaign)
    settings = connection.settings_dict
    holder = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or None,
                             port=settings["PORT"] or None, password=settings["PASSWORD"] or None)
    try:
        holder.execute("SELECT 1 FROM annotator_campaign WHERE id = %s FOR UPDATE", [campaign.pk])  # claims wait
        refused = []

        def claim(user):
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET lock_timeout = '2s'")
                try:
                    assignment_claim(labeler=user, campaign=campaign)
                except Exception as error:  # noqa: BLE001 - what each claim met, checked below
                    refused.append((user, type(error).__name__))
            finally:
                close_old_connections()
                connection.close()

        thread = threading.Thread(target=claim, args=(stranger,))
        thread.start()
        thread.join(timeout=1.5)  # well inside the lock timeout: answered without waiting
        assert not thread.is_alive() and refused == [(stranger, "NotFound")]
        thread = threading.Thread(target=claim, args=(labeler,))
        thread.start()
        thread.join()
        assert refused[1] == (labeler, "OperationalError")  # a member's claim waits for the lock (and times out)
    finally:
        holder.close()


def test_the_lists_and_the_hot_path_agree_on_who_labels_what(labeler, stranger, campaign):
    manager = UserFactory()
    closed = CampaignFactory(is_active=False, labelers=[labeler])
    managed = CampaignFactory()
    MembershipFactory(campaign=managed, user=manager, role=CampaignRole.MANAGER)
    MembershipFactory(campaign=managed, user=stranger, role=CampaignRole.MANAGER)
    staff = StaffFactory()
    LabelerProfileFactory(user=staff)
    LabelerProfileFactory(user=manager)
    for user in (labeler, stranger, manager, staff):
        listed = set(campaigns_for_labeler(labeler=user))
        for candidate in (campaign, closed, managed):
            if candidate in listed:
                _, found, _ = campaign_and_live_leases(labeler=user, campaign=candidate.name, now=timezone.now(),
                                                       limit=1)
                assert found.pk == candidate.pk
                assert campaign_get_for_labeler(labeler=user, campaign=candidate.pk) == candidate
                continue
            with pytest.raises(NotFound):
                campaign_and_live_leases(labeler=user, campaign=candidate.name, now=timezone.now(), limit=1)
            with pytest.raises(NotFound):
                campaign_get_for_labeler(labeler=user, campaign=candidate.name)
    assert set(campaigns_for_labeler(labeler=labeler)) == {campaign}
    assert not campaigns_for_labeler(labeler=stranger).exists() and not campaigns_for_labeler(labeler=staff).exists()


# --- managers ---------------------------------------------------------------------------------------------------


@pytest.fixture
def other_campaign(db):
    return CampaignFactory(title="Someone else's")


def manager_pages(campaign) -> list[str]:
    name = [campaign.name]
    return [
        reverse("budget:campaign", args=name), reverse("budget:ledger", args=name),
        reverse("budget:earnings_csv", args=name), reverse("budget:ledger_csv", args=name),
        reverse("rounds:campaign", args=name), reverse("rounds:evaluation", args=name),
    ]


def test_a_manager_runs_their_campaign_and_is_refused_another_with_a_reason(client, manager, campaign,
                                                                           other_campaign):
    client.force_login(manager)
    for url in manager_pages(campaign):
        assert client.get(url).status_code == 200, url
    for url in manager_pages(other_campaign):
        response = client.get(url)
        assert response.status_code == 403, url
        assert shown(f"You do not manage campaign {other_campaign.name!r}") in response.content.decode(), url
    missing = client.get(reverse("rounds:campaign", args=["no-such-campaign"]))
    assert missing.status_code == 403  # the same answer as another's: names leak nothing
    for url in (reverse("rounds:evaluation_refresh", args=[other_campaign.name]),
                reverse("rounds:start", args=[other_campaign.name])):
        assert client.post(url).status_code == 403, url

    for overview in (reverse("budget:overview"), reverse("rounds:campaigns")):
        html = client.get(overview).content.decode()
        assert campaign.name in html and other_campaign.name not in html, overview
    listing = client.get(reverse("labeling:campaign_list")).content.decode()
    assert reverse("rounds:campaign", args=[campaign.name]) in listing and other_campaign.name not in listing


def test_a_manager_is_not_staff(client, manager, campaign):
    client.force_login(manager)
    admin = client.get(reverse("admin:index"))
    assert admin.status_code == 302 and admin.url.startswith(reverse("admin:login"))
    assert client.get(reverse("budget:entry_new", args=[campaign.name])).status_code == 403  # staff alone record
    assert client.get(reverse("labeling:label", args=[campaign.name])).status_code == 403  # not a labeler
    html = client.get(reverse("budget:campaign", args=[campaign.name])).content.decode()
    assert reverse("budget:entry_new", args=[campaign.name]) not in html  # no button that would be refused


def test_staff_see_every_campaign_and_others_none(client, staff, labeler, campaign, other_campaign):
    client.force_login(staff)
    for url in manager_pages(campaign) + manager_pages(other_campaign):
        assert client.get(url).status_code == 200, url
    assert client.get(reverse("rounds:campaign", args=["no-such-campaign"])).status_code == 404
    assert {c.pk for c in campaigns_managed(user=staff)} == {campaign.pk, other_campaign.pk}

    client.force_login(labeler)
    for url in [reverse("budget:overview"), reverse("rounds:campaigns"), *manager_pages(campaign)]:
        assert client.get(url).status_code == 403, url
    client.logout()
    for url in [reverse("budget:overview"), *manager_pages(campaign)]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url


def test_the_api_serves_a_manager_their_campaign_only(manager, campaign, other_campaign):
    api = client_with_token(manager)
    export = api.get(f"/api/campaigns/{campaign.name}/export.jsonl", HTTP_ACCEPT="application/jsonl")
    assert export.status_code == 200
    assert api.get(f"/api/campaigns/{campaign.name}/evaluations/").json() == []
    assert api.get(f"/api/campaigns/{campaign.name}/leaderboard/").status_code == 404  # none yet
    stats = api.get(f"/api/campaigns/{campaign.name}/stats/").json()
    assert stats["money"]["currency"] == "USD" and stats["me"] is None
    other = f"/api/campaigns/{other_campaign.name}"
    for url in (f"{other}/export.jsonl", f"{other}/evaluations/", f"{other}/leaderboard/",
                "/api/campaigns/no-such-campaign/leaderboard/"):
        response = api.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 403, url
        assert response.json()["code"] == "forbidden" and "You do not manage campaign" in response.json()["detail"]
    assert api.post(f"/api/campaigns/{other_campaign.name}/evaluations/", {}, format="json").status_code == 403
    assert api.get(f"/api/campaigns/{other_campaign.name}/stats/").status_code == 403  # not a labeler either
    assert api.get(f"/api/campaigns/{campaign.name}/next/").status_code == 403  # a manager does not label


def test_the_manager_access_function(manager, labeler, campaign, other_campaign):
    assert campaign_get_for_manager(user=manager, campaign=campaign.name) == campaign
    assert campaign_get_for_manager(user=manager, campaign=campaign.pk) == campaign
    for user, name in ((manager, other_campaign.name), (manager, "9" * 40), (labeler, campaign.name)):
        with pytest.raises(AccessDenied, match="You do not manage campaign"):
            campaign_get_for_manager(user=user, campaign=name)
    assert list(campaigns_managed(user=manager)) == [campaign] and not campaigns_managed(user=labeler).exists()


def test_staff_open_the_overviews_before_any_campaign_exists(client, staff):
    client.force_login(staff)
    for url in (reverse("budget:overview"), reverse("rounds:campaigns")):
        assert client.get(url).status_code == 200, url
