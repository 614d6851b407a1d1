"""factory_boy factories for the annotator's models (real rows in the real PostgreSQL)."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotator import models

PASSWORD = "labeler-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class LabelerFactory(UserFactory):
    """A user with a labeler profile (human unless `labeler__kind` says otherwise), a labeler of the campaigns in
    `campaigns` (`LabelerFactory(campaigns=[campaign])`) and of no other."""

    username = factory.Sequence(lambda n: f"labeler{n}")
    labeler = factory.RelatedFactory("tests.factories.LabelerProfileFactory", factory_related_name="user")

    @factory.post_generation
    def campaigns(self, create, extracted, **kwargs):
        for campaign in extracted or ():
            MembershipFactory(campaign=campaign, user=self)


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class LabelerProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LabelerProfile

    user = factory.SubFactory(UserFactory)
    kind = models.LabelerKind.HUMAN


class CampaignFactory(factory.django.DjangoModelFactory):
    """A campaign whose labelers are the users in `labelers` (`CampaignFactory(labelers=[labeler])`): only members
    see a campaign, so one made without them has no labeler."""

    class Meta:
        model = models.Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"campaign-{n}")
    title = factory.LazyAttribute(lambda o: o.name.replace("-", " ").title())
    instructions = "Choose the continuation with the more positive sentiment."
    overlap = 1
    pay_per_judgement = Decimal("0.10")

    @factory.post_generation
    def labelers(self, create, extracted, **kwargs):
        for user in extracted or ():
            MembershipFactory(campaign=self, user=user)


class MembershipFactory(factory.django.DjangoModelFactory):
    """A user's membership of a campaign: one of its labelers unless `role` says otherwise
    (`role=models.CampaignRole.MANAGER`). Only members see a campaign: a LabelerFactory labeler is a member of
    nothing until one of these (or `campaigns=` / `labelers=` on the factories above) makes it so."""

    class Meta:
        model = models.CampaignMembership
        django_get_or_create = ("campaign", "user")

    campaign = factory.SubFactory(CampaignFactory)
    user = factory.SubFactory(LabelerFactory)
    role = models.CampaignRole.LABELER


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prompt

    campaign = factory.SubFactory(CampaignFactory)
    text = factory.Sequence(lambda n: f"Prompt number {n}: shall I compare thee")


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Completion

    prompt = factory.SubFactory(PromptFactory)
    text = factory.Sequence(lambda n: f" to a summer's day, take {n}")


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Comparison

    campaign = factory.SubFactory(CampaignFactory)
    prompt = factory.SubFactory(PromptFactory, campaign=factory.SelfAttribute("..campaign"))
    completion_a = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"))
    completion_b = factory.SubFactory(CompletionFactory, prompt=factory.SelfAttribute("..prompt"))
    judgements_wanted = factory.LazyAttribute(lambda o: o.campaign.overlap)


class RatingItemFactory(ComparisonFactory):
    """A rating campaign's item: one completion, no B side."""

    completion_b = None


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Assignment

    comparison = factory.SubFactory(ComparisonFactory)
    labeler = factory.SubFactory(LabelerFactory)
    leased_at = factory.LazyFunction(timezone.now)
    leased_until = factory.LazyAttribute(lambda o: o.leased_at + timedelta(minutes=5))
