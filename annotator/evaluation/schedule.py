"""Where the next battle labels go: the open battles of the pairs of checkpoints the leaderboard is least sure of
come first (models_rl.battle_schedule: pairs never compared first, then the largest standard error of the pair's
win probability under the current fit).

Labelers take the open item with the highest priority (annotator_claim), so scheduling is setting priorities:
every open evaluation battle gets EVALUATION_PRIORITY + its pair's priority. A rebalance runs when a run is
published and whenever the leaderboard is refreshed (the evaluate command, the staff page, the demo).
"""

from collections import defaultdict

from django.db import transaction

from annotator.evaluation.selectors import base_checkpoint, evaluation_battles
from annotator.models import Campaign, Comparison, ComparisonPurpose, EvaluationState

# Above every training item (their priorities count the round's pairs, far below this), so an evaluation that is
# under way is finished before more training labels are bought.
EVALUATION_PRIORITY = 1_000_000.0


@transaction.atomic
def evaluation_rebalance(*, campaign: Campaign) -> dict[tuple[int, int], float]:
    """Set the priority of every open battle of the campaign's labeling runs from its pair's priority; returns
    {(checkpoint id, checkpoint id): priority} for the pairs with open battles."""
    from models_rl.battle_schedule import battle_priorities, pair_key
    from models_rl.leaderboard import Battle

    open_battles = list(
        Comparison.objects.filter(
            campaign=campaign, purpose=ComparisonPurpose.EVALUATION, is_open=True, completion_b__isnull=False,
            evaluation__state=EvaluationState.LABELING,
        ).values_list("pk", "completion_a__checkpoint_id", "completion_b__checkpoint_id")
    )
    if not open_battles:
        return {}
    answered = evaluation_battles(campaign=campaign)
    models = sorted({str(c) for _, a, b in open_battles for c in (a, b)}
                    | {str(c) for row in answered for c in (row.checkpoint_a, row.checkpoint_b)})
    base = base_checkpoint(campaign=campaign)
    baseline = str(base.pk) if base is not None and str(base.pk) in models else models[0]
    battles = [Battle(str(row.checkpoint_a), str(row.checkpoint_b), row.choice) for row in answered]
    priorities = battle_priorities(models, battles, baseline)
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pk, a, b in open_battles:
        by_pair[pair_key(str(a), str(b))].append(pk)
    for pair, ids in by_pair.items():
        Comparison.objects.filter(pk__in=ids).update(priority=EVALUATION_PRIORITY + priorities[pair])
    return {(int(a), int(b)): priorities[(a, b)] for a, b in by_pair}
