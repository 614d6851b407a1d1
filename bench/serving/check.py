"""The database check after a run: every acknowledged judgement stored exactly once and charged exactly once,
nothing stored unacknowledged, and every comparison of the campaign counting the judgements it holds.

Imported once Django is set up: it uses the models.
"""

from collections import Counter

from django.db.models import Count, F, Q

from annotator.models import Comparison, Judgement, LedgerCategory, LedgerEntry


def database_check(campaign_name: str, acknowledged: list[int], since) -> dict:
    """The run's judgements are those stored since it started (the seeded history is not the run's); the
    comparisons' counts are checked over the whole campaign, history included."""
    run_judgements = Judgement.objects.filter(assignment__comparison__campaign__name=campaign_name,
                                              created_at__gte=since)
    stored = list(run_judgements.values_list("assignment_id", flat=True))
    stored_set, acknowledged_set = set(stored), set(acknowledged)
    charges = Counter(LedgerEntry.objects.filter(campaign__name=campaign_name, category=LedgerCategory.LABELING,
                                                 created_at__gte=since).values_list("assignment_id", flat=True))
    per_pair = (run_judgements.values("assignment__comparison", "assignment__labeler")
                .annotate(n=Count("pk")).filter(n__gt=1))
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_twice": len(acknowledged) - len(acknowledged_set),
        "stored": len(stored),
        "lost": len(acknowledged_set - stored_set),
        "stored_unacknowledged": len(stored_set - acknowledged_set),
        "duplicated": len(stored) - len(stored_set) + per_pair.count(),
        "charged_not_once": sum(1 for a in stored_set if charges.get(a) != 1) + len(set(charges) - stored_set),
        "comparisons_miscounted": comparisons_miscounted(campaign_name),
    }


def comparisons_miscounted(campaign_name: str) -> int:
    """Comparisons whose `judgements_received` is not the number of judgements they hold, or whose `is_open`
    does not follow from it (the benchmark closes comparisons only by answering them)."""
    comparisons = Comparison.objects.filter(campaign__name=campaign_name)
    wrong_count = (comparisons.annotate(stored=Count("assignments__judgement"))
                   .exclude(judgements_received=F("stored")).count())
    wrong_state = comparisons.filter(
        Q(is_open=True, judgements_received__gte=F("judgements_wanted"))
        | Q(is_open=False, judgements_received__lt=F("judgements_wanted"))
    ).count()
    return wrong_count + wrong_state


def check_failed(check: dict) -> bool:
    return bool(check["lost"] or check["duplicated"] or check["stored_unacknowledged"] or check["charged_not_once"]
                or check["comparisons_miscounted"])
