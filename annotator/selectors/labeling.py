"""What a labeler sees: campaigns with their progress, and an item laid out on screen sides.

The page shows completions as "left" and "right", i.e. first and second in `annotator.core.sides`,
which lays them out and reads answers back by the same rule.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser

from annotator.models import Assignment, Campaign, TaskKind
from annotator.selectors.campaigns import campaign_progress_for_labeler, campaigns_for_labeler
from annotator.core.sides import item_kind, screen_texts


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
    """The active campaigns the user labels, each with their progress in it."""
    return [
        CampaignCard(
            campaign=campaign, progress=campaign_progress_for_labeler(labeler=labeler, campaign=campaign, now=now)
        )
        for campaign in campaigns_for_labeler(labeler=labeler)
    ]


def labeling_item(*, assignment: Assignment) -> LabelingItem:
    """Lay out an assignment (comparison, prompt and completions loaded) on the screen's sides; an item with no
    completion B is rated alone, whatever its campaign's kind."""
    is_rating = item_kind(assignment.comparison) == TaskKind.RATING
    left, right = (assignment.comparison.completion_a.text, None) if is_rating else screen_texts(assignment)
    return LabelingItem(
        assignment_id=assignment.pk, prompt=assignment.comparison.prompt.text, left=left, right=right, is_rating=is_rating
    )
