"""Invitations: who may invite, what accepting a link creates, and that a link works once, in time, and only whole."""

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotator.core.errors import InvalidInput
from annotator.models import CampaignMembership, CampaignRole, Invitation, LabelerProfile
from annotator.services.invitations import (
    InvitationUsed,
    invitation_accept,
    invitation_create,
    invitation_secret_hash,
)
from tests.factories import CampaignFactory, LabelerFactory, UserFactory

User = get_user_model()
HTMX = {"HTTP_HX_REQUEST": "true"}
GOOD_PASSWORD = "a-long-enough-pass-42"
LINK = re.compile(r"https?://[^\s\"'<>]+/accounts/invite/([A-Za-z0-9_-]+)/")


def invite_url(campaign):
    return reverse("members:invite", args=[campaign.name])


def accept_url(secret):
    return reverse("invitation_accept", args=[secret])


def signup(client, secret, username="newcomer", password=GOOD_PASSWORD, email=""):
    return client.post(
        accept_url(secret), {"username": username, "email": email, "password1": password, "password2": password}
    )


def manager_of(campaign):
    user = UserFactory()
    CampaignMembership.objects.create(campaign=campaign, user=user, role=CampaignRole.MANAGER)
    return user


def secret_from(response) -> str:
    [secret] = set(LINK.findall(response.content.decode()))
    return secret


# Who may invite


def test_staff_invites_from_the_members_page_and_sees_the_link_once(db, client, staff):
    campaign = CampaignFactory()
    client.force_login(staff)
    page = client.get(reverse("members:campaign", args=[campaign.name]))
    assert page.status_code == 200 and "Create an invitation link" in page.content.decode()

    response = client.post(invite_url(campaign), {"role": "labeler", "email": ""})
    assert response.status_code == 201
    secret = secret_from(response)
    invitation = Invitation.objects.get()
    assert (invitation.campaign, invitation.role, invitation.created_by, invitation.email) == (
        campaign, CampaignRole.LABELER, staff, ""
    )
    assert invitation.token_hash == invitation_secret_hash(secret) and secret not in invitation.token_hash
    assert timedelta(days=7) - timedelta(minutes=1) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    assert mail.outbox == []

    again = client.get(reverse("members:campaign", args=[campaign.name])).content.decode()
    assert secret not in again  # shown once
    assert "Pending invitations" in again and 'id="pending-invitations"' in again


def test_a_manager_invites_to_their_campaign_with_htmx(db, client):
    campaign = CampaignFactory()
    manager = manager_of(campaign)
    client.force_login(manager)
    response = client.post(invite_url(campaign), {"role": "manager"}, **HTMX)
    assert response.status_code == 201
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="invitations"')  # the partial, not the page
    secret_from(response)
    assert Invitation.objects.get().role == CampaignRole.MANAGER


def test_a_manager_cannot_invite_to_another_campaign(db, client):
    theirs, other = CampaignFactory(), CampaignFactory()
    client.force_login(manager_of(theirs))
    assert client.get(reverse("members:campaign", args=[other.name])).status_code == 403
    response = client.post(invite_url(other), {"role": "labeler"})
    assert response.status_code == 403
    assert "You do not manage" in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_labeler_cannot_invite_even_to_their_own_campaign(db, client, labeler):
    campaign = CampaignFactory()
    CampaignMembership.objects.create(campaign=campaign, user=labeler, role=CampaignRole.LABELER)
    client.force_login(labeler)
    assert client.get(reverse("members:campaign", args=[campaign.name])).status_code == 403
    assert client.post(invite_url(campaign), {"role": "manager"}).status_code == 403
    assert client.post(invite_url(campaign), {"role": "labeler"}, **HTMX).status_code == 403
    assert not Invitation.objects.exists()
    # Their list of campaigns to manage is empty.
    assert "You manage no campaign." in client.get(reverse("members:campaigns")).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(db, client):
    campaign = CampaignFactory()
    for response in (client.get(reverse("members:campaign", args=[campaign.name])), client.post(invite_url(campaign))):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_bad_invitation_input_is_a_400_with_the_form_errors(db, client, staff):
    campaign = CampaignFactory()
    client.force_login(staff)
    response = client.post(invite_url(campaign), {"role": "owner", "email": "not-an-address"}, **HTMX)
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#invitations"
    body = response.content.decode()
    assert "Select a valid choice" in body and "Enter a valid email address." in body
    assert not Invitation.objects.exists()
    assert client.get(reverse("members:campaign", args=["no-such-campaign"])).status_code == 404


def test_the_members_page_lists_members_and_pending_invitations_only(db, client, staff):
    campaign = CampaignFactory()
    manager, member = manager_of(campaign), LabelerFactory(username="zoe")
    CampaignMembership.objects.create(campaign=campaign, user=member)
    pending, _ = invitation_create(campaign=campaign, role="labeler", created_by=staff, email="ann@example.org")
    _, used = invitation_create(campaign=campaign, role="labeler", created_by=staff, email="bob@example.org")
    invitation_accept(secret=used, user=LabelerFactory())
    invitation_create(campaign=campaign, role="labeler", created_by=staff, email="cy@example.org",
                      now=timezone.now() - timedelta(days=8))
    client.force_login(manager)
    body = client.get(reverse("members:campaign", args=[campaign.name])).content.decode()
    assert manager.username in body and "zoe" in body
    assert "ann@example.org" in body and "bob@example.org" not in body and "cy@example.org" not in body


# Accepting


def test_accepting_creates_the_user_profile_and_membership_logs_in_and_lands_on_the_campaign(db, client, staff):
    campaign = CampaignFactory()
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff, email="new@example.org")
    page = client.get(accept_url(secret))
    assert page.status_code == 200
    assert campaign.title in page.content.decode() and 'value="new@example.org"' in page.content.decode()

    response = signup(client, secret, email="new@example.org")
    assert response.status_code == 302
    assert response["Location"] == reverse("labeling:instructions", args=[campaign.name])
    user = User.objects.get(username="newcomer")
    assert user.check_password(GOOD_PASSWORD) and user.email == "new@example.org"
    assert user.labeler.kind == "human"
    assert CampaignMembership.objects.get(user=user).campaign == campaign
    assert CampaignMembership.objects.get(user=user).role == CampaignRole.LABELER
    invitation.refresh_from_db()
    assert invitation.used_by == user and invitation.used_at is not None
    assert int(client.session["_auth_user_id"]) == user.pk


def test_a_manager_invitation_lands_on_the_rounds_page_without_a_labeler_profile(db, client, staff):
    campaign = CampaignFactory()
    _, secret = invitation_create(campaign=campaign, role="manager", created_by=staff)
    response = signup(client, secret, username="boss")
    assert response["Location"] == reverse("rounds:campaign", args=[campaign.name])
    boss = User.objects.get(username="boss")
    assert not LabelerProfile.objects.filter(user=boss).exists()
    assert CampaignMembership.objects.get(user=boss).role == CampaignRole.MANAGER


def test_a_logged_in_user_just_accepts_and_an_existing_membership_takes_the_new_role(db, client, staff, labeler):
    campaign, other = CampaignFactory(), CampaignFactory()
    CampaignMembership.objects.create(campaign=campaign, user=labeler, role=CampaignRole.LABELER)
    _, secret = invitation_create(campaign=campaign, role="manager", created_by=staff)
    _, secret_other = invitation_create(campaign=other, role="labeler", created_by=staff)
    client.force_login(labeler)
    assert f"Join as {labeler.username}" in client.get(accept_url(secret)).content.decode()
    assert client.post(accept_url(secret))["Location"] == reverse("rounds:campaign", args=[campaign.name])
    assert client.post(accept_url(secret_other))["Location"] == reverse("labeling:instructions", args=[other.name])
    assert dict(CampaignMembership.objects.filter(user=labeler).values_list("campaign__name", "role")) == {
        campaign.name: "manager", other.name: "labeler"
    }
    assert User.objects.count() == 2  # staff and the labeler: nobody new


def test_the_same_link_twice_is_refused_and_creates_nothing_the_second_time(db, client, staff):
    campaign = CampaignFactory()
    _, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    assert signup(client, secret, username="first").status_code == 302
    second = Client()
    for response in (second.get(accept_url(secret)), signup(second, secret, username="second")):
        assert response.status_code == 410
        assert "already used" in response.content.decode()
    assert not User.objects.filter(username="second").exists()
    assert CampaignMembership.objects.count() == 1
    assert "_auth_user_id" not in second.session


def test_an_expired_link_is_refused(db, client, staff):
    campaign = CampaignFactory()
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff, valid_for=timedelta(days=1))
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = signup(client, secret)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert not User.objects.filter(username="newcomer").exists() and not CampaignMembership.objects.exists()


def test_an_unknown_link_is_a_404(db, client):
    response = client.get(accept_url("no-such-secret"))
    assert response.status_code == 404 and "not valid" in response.content.decode()
    assert signup(client, "no-such-secret").status_code == 404
    assert not User.objects.filter(username="newcomer").exists()


@pytest.mark.parametrize("password, error", [("short1", "too short"), (None, "didn’t match")])
def test_a_bad_password_shows_the_form_error_and_creates_nothing(db, client, staff, password, error):
    campaign = CampaignFactory()
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    data = {"username": "newcomer", "password1": password or GOOD_PASSWORD, "password2": password or "something-else-9"}
    response = client.post(accept_url(secret), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not User.objects.filter(username="newcomer").exists()
    invitation.refresh_from_db()
    assert invitation.used_at is None and not CampaignMembership.objects.exists()
    assert signup(client, secret).status_code == 302  # the link still works


def test_a_taken_username_is_a_form_error(db, client, staff):
    campaign = CampaignFactory()
    LabelerFactory(username="Taken")
    _, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    response = signup(client, secret, username="taken")
    assert response.status_code == 400 and "already exists" in response.content.decode()
    assert not CampaignMembership.objects.exists()


def test_nothing_is_half_created_when_saving_the_user_fails(db, staff):
    """A username taken between the form's check and the save: no user, profile or membership, link unused."""
    campaign = CampaignFactory()
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    newcomer = User(username="racer")
    newcomer.set_password(GOOD_PASSWORD)
    UserFactory(username="racer")
    with pytest.raises(InvalidInput, match="was just taken"):
        invitation_accept(secret=secret, user=newcomer)
    invitation.refresh_from_db()
    assert invitation.used_at is None
    assert not CampaignMembership.objects.exists() and not LabelerProfile.objects.exists()
    assert User.objects.filter(username="racer").count() == 1


def test_an_emailed_invitation_sends_one_mail_whose_link_works(db, client, staff):
    campaign = CampaignFactory()
    client.force_login(manager_of(campaign))
    response = client.post(invite_url(campaign), {"role": "labeler", "email": "Ann@Example.ORG"})
    assert response.status_code == 201 and "e-mailed to Ann@example.org" in response.content.decode()
    [message] = mail.outbox
    assert message.to == ["Ann@example.org"] and campaign.title in message.subject
    [secret] = LINK.findall(message.body)
    assert secret == secret_from(response)
    client.logout()
    assert signup(client, secret, username="ann").status_code == 302
    assert User.objects.get(username="ann").email == "Ann@example.org"


def test_withdrawing_an_invitation_stops_its_link(db, client, staff):
    campaign, other = CampaignFactory(), CampaignFactory()
    manager = manager_of(campaign)
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=manager)
    withdraw = reverse("members:withdraw", args=[campaign.name, invitation.pk])

    client.force_login(manager_of(other))
    assert client.post(withdraw).status_code == 403
    assert client.post(reverse("members:withdraw", args=[other.name, invitation.pk])).status_code == 404

    client.force_login(manager)
    response = client.post(withdraw, **HTMX)
    assert response.status_code == 200 and "Invitation withdrawn" in response.content.decode()
    client.logout()
    assert signup(client, secret).status_code == 410
    assert not User.objects.filter(username="newcomer").exists()


def test_a_used_invitation_cannot_be_withdrawn(db, client, staff):
    campaign = CampaignFactory()
    invitation, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    invitation_accept(secret=secret, user=LabelerFactory())
    client.force_login(staff)
    response = client.post(reverse("members:withdraw", args=[campaign.name, invitation.pk]))
    assert response.status_code == 400 and "already used" in response.content.decode()


def test_the_service_refuses_a_bad_role_and_a_bad_lifetime(db, staff):
    campaign = CampaignFactory()
    with pytest.raises(InvalidInput, match="role must be one of"):
        invitation_create(campaign=campaign, role="owner", created_by=staff)
    with pytest.raises(InvalidInput):
        invitation_create(campaign=campaign, role="labeler", created_by=staff, valid_for=timedelta(0))
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        invitation_create(campaign=campaign, role="labeler", created_by=staff, email="nope")
    assert not Invitation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_people_using_one_link_at_once_get_one_membership():
    staff = UserFactory(is_staff=True)
    campaign = CampaignFactory()
    _, secret = invitation_create(campaign=campaign, role="labeler", created_by=staff)
    people = [LabelerFactory(), LabelerFactory()]
    barrier = threading.Barrier(len(people))
    outcomes = []

    def accept(user):
        try:
            barrier.wait()
            invitation_accept(secret=secret, user=user)
            outcomes.append("joined")
        except InvitationUsed:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["joined", "refused"]
    assert CampaignMembership.objects.filter(campaign=campaign).count() == 1
