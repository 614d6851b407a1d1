"""What a labeler sees: campaigns with their progress, and an item laid out on screen sides.

The screen shows completions as "left" and "right"; the data speaks of completion A and B. `swapped` on the
assignment decides the layout, and `pairwise_choice_for_side` reads an answer back through the same rule,
so showing and recording can never disagree.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser

from annotator.models import Assignment, Campaign, Choice, TaskKind
from annotator.selectors.campaigns import campaign_progress_for_labeler, campaigns_active
from annotator.services.errors import InvalidInput

# What the labeler may answer on a pairwise item, in screen terms.
PAIRWISE_SIDES = ("left", "right", "tie", "both_bad")


@dataclass(frozen=True)
class CampaignCard:
    campaign: Campaign
    progress: dict


@dataclass(frozen=True)
class LabelingItem:
    """One item as laid out on the page: `right` is None for a rating item."""

    assignment_id: int
    prompt: str
    left: str
    right: str | None
    is_rating: bool


def campaign_cards_for_labeler(*, labeler: AbstractBaseUser, now: datetime | None = None) -> list[CampaignCard]:
    """Active campaigns, each with the labeler's progress in it."""
    return [
        CampaignCard(
            campaign=campaign, progress=campaign_progress_for_labeler(labeler=labeler, campaign=campaign, now=now)
        )
        for campaign in campaigns_active()
    ]


def labeling_item(*, assignment: Assignment, campaign: Campaign) -> LabelingItem:
    """Lay out an assignment of `campaign` (comparison, prompt and completions loaded) on the screen's sides."""
    comparison = assignment.comparison
    if campaign.task_kind == TaskKind.RATING:
        return LabelingItem(
            assignment_id=assignment.pk,
            prompt=comparison.prompt.text,
            left=comparison.completion_a.text,
            right=None,
            is_rating=True,
        )
    first, second = comparison.completion_a, comparison.completion_b
    if assignment.swapped:
        first, second = second, first
    return LabelingItem(
        assignment_id=assignment.pk, prompt=comparison.prompt.text, left=first.text, right=second.text, is_rating=False
    )


def pairwise_choice_for_side(*, side: str, swapped: bool) -> str:
    """The stored choice (completion A/B, tie, both bad) for what the labeler picked on screen."""
    if side == "left":
        return Choice.B if swapped else Choice.A
    if side == "right":
        return Choice.A if swapped else Choice.B
    if side in (Choice.TIE, Choice.BOTH_BAD):
        return side
    raise InvalidInput(f"answer must be one of {', '.join(PAIRWISE_SIDES)}; got {side!r}.")
