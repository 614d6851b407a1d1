"""The campaign the labelers work on, their accounts, and the campaign's paid history.

History is written by the project's own definition of a paid answer: for each past judgement one call of the
server function `annotator_claim` (with a past time) and one of `annotator_answer`, the same two calls every
next -> submit of the site makes. So every stored count (the judgement, the assignment's state, the ledger's
charges, the comparison's `judgements_received` and `is_open`, the campaign's ledger memo) is right by
construction, and a change to those functions changes the history with them. The calls run in one PL/pgSQL
loop inside PostgreSQL (`HISTORY_LOOP`), over a table of turns made in one statement, so 40,000 answers cost no
round trips. The loop commits after every turn, as the site does: within one transaction every claim walks the
campaign row's and the closed comparisons' old row versions, which nothing can prune before the commit, and the
seeding grows with the square of its length (one transaction for 40,000 answers had not ended after 10 minutes;
committed turn by turn they take about 11 s on a 2-core VM).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import connection, connections, transaction
from django.utils import timezone

from annotator.core.pricing import answer_unit, item_price
from annotator.models import (
    Assignment,
    Campaign,
    Choice,
    Comparison,
    Completion,
    Judgement,
    LabelerProfile,
    LedgerEntry,
    Prompt,
    TaskKind,
)
from annotator.services.simulated_labelers import simulated_labelers_ensure
from bench.serving.config import CAMPAIGN, LABELER_PREFIX, BenchConfig

HISTORY_ANSWER_MILLISECONDS = 4000
HISTORY_TURN = timedelta(seconds=5)  # between one past claim and the next; each is answered after 4 s

# One row per past judgement, in the order they are made: labeler n % count answers the n-th. Claims take the
# first open comparison the labeler has not had, so with at least `overlap` labelers taking turns, each
# comparison at the head of the queue gets `overlap` answers from different labelers and closes.
HISTORY_TURNS = """
    CREATE TEMPORARY TABLE bench_history_turn AS
    SELECT turn.n, %(campaign)s::bigint AS campaign, labeler.id AS labeler,
           %(start)s::timestamptz + turn.n * %(turn_seconds)s * interval '1 second' AS claimed_at,
           %(lease_seconds)s * interval '1 second' AS lease_length, labeler.reserved,
           %(task_kind)s::text AS task_kind, %(choice)s::text AS choice, %(milliseconds)s::integer AS milliseconds,
           labeler.pay, labeler.fee, labeler.paid_seconds, %(unit)s::text AS unit
      FROM generate_series(0, %(answers)s - 1) AS turn (n)
      JOIN unnest(%(labelers)s::integer[], %(reserved)s::numeric[], %(pay)s::numeric[], %(fee)s::numeric[],
                  %(paid_seconds)s::numeric[]) WITH ORDINALITY
           AS labeler (id, reserved, pay, fee, paid_seconds, position)
        ON labeler.position = turn.n %% %(labeler_count)s + 1
"""

# Claim, then answer 4 s later, turn by turn, committing each turn; a refusal stops the seeding. A DO block may
# commit only when run outside a transaction block. The tables grow under the loop while their statistics say they
# are empty, and the plans then scan them whole (40,000 answers took 6 minutes): so they are analysed again each
# time the history doubles, and the plans always see about their real size.
GROWING_TABLES = ", ".join(model._meta.db_table for model in (Assignment, Judgement, LedgerEntry, Comparison))
HISTORY_LOOP = f"""
DO $history$
DECLARE
    turn record;
    lease bigint;
    refused text;
BEGIN
    FOR turn IN SELECT * FROM bench_history_turn ORDER BY n LOOP
        SELECT claimed.lease_id INTO lease
          FROM annotator_claim(turn.campaign, turn.labeler, false, turn.claimed_at,
                               turn.claimed_at + turn.lease_length, turn.reserved) AS claimed;
        IF lease IS NULL THEN
            RAISE EXCEPTION 'history turn %: labeler % found nothing to claim', turn.n, turn.labeler;
        END IF;
        SELECT answered.refused INTO refused
          FROM annotator_answer(lease, turn.labeler, turn.task_kind,
                                turn.claimed_at + turn.milliseconds * interval '1 millisecond',
                                turn.choice, 2, NULL, '', turn.milliseconds, turn.pay, turn.fee,
                                turn.paid_seconds, turn.unit) AS answered;
        IF refused IS NOT NULL THEN
            RAISE EXCEPTION 'history turn %: the answer was refused (%)', turn.n, refused;
        END IF;
        COMMIT;
        IF turn.n >= 64 AND turn.n & (turn.n - 1) = 0 THEN
            ANALYZE {GROWING_TABLES};
        END IF;
    END LOOP;
END
$history$
"""


def campaign_seed(config: BenchConfig) -> tuple[str, list[str]]:
    """One big pairwise campaign and the labelers' accounts (its labelers); returns (campaign name, API tokens)."""
    if config.history > config.items or (config.history and config.labelers < config.overlap):
        raise SystemExit("--history needs at most --items comparisons and at least --overlap labelers")

    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=CAMPAIGN, title="Serving benchmark", instructions="Pick the better continuation.",
            overlap=config.overlap, pay_per_judgement=Decimal("0.10"), money_budget=Decimal("1000000"),
        )
        prompts = Prompt.objects.bulk_create(
            Prompt(campaign=campaign, text=f"Prompt {n}: shall I compare thee to a summer's day?")
            for n in range(config.items)
        )
        completions = Completion.objects.bulk_create(
            Completion(prompt=prompt, text=f" Thou art more {side} and more temperate, take {prompt.pk}.")
            for prompt in prompts for side in ("lovely", "dreary")
        )
        Comparison.objects.bulk_create(
            Comparison(campaign=campaign, prompt=prompt, completion_a=completions[2 * n],
                       completion_b=completions[2 * n + 1], judgements_wanted=config.overlap)
            for n, prompt in enumerate(prompts)
        )
        # Paid at the campaign's rate (None), like people, so every submit writes a real charge; members of the
        # campaign as its labelers, so every call checks a real membership.
        accounts = simulated_labelers_ensure(count=config.labelers, prefix=LABELER_PREFIX, pay_per_judgement=None,
                                             campaign=campaign)
    if config.history:
        history_seed(campaign, [user for user, _ in accounts], answers=config.history * config.overlap)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connections.close_all()  # the client processes are forked from this one
    return campaign.name, [token for _, token in accounts]


def history_seed(campaign: Campaign, labelers: list, *, answers: int) -> None:
    """Past work: the first answers / overlap comparisons judged `overlap` times by different labelers and
    paid, as a running campaign has; without it a benchmark flatters every query that grows with the
    campaign's history. Each answer is priced by the one price rule (annotator.core.pricing) for its
    labeler. Run outside any transaction: it commits turn by turn."""
    profiles = {profile.user_id: profile for profile in LabelerProfile.objects.filter(user__in=labelers)}
    reserved, pay, fee, paid_seconds = [], [], [], []
    for labeler in labelers:
        profile = profiles.get(labeler.pk)
        reserved.append(item_price(campaign=campaign, profile=profile).total)
        price = item_price(campaign=campaign, profile=profile, milliseconds=HISTORY_ANSWER_MILLISECONDS)
        pay.append(price.pay)
        fee.append(price.fee)
        paid_seconds.append(price.paid_seconds)
    start = timezone.now() - timedelta(days=1) - answers * HISTORY_TURN
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the tables just filled: plan the loop's claims as the run's are planned
        cursor.execute("SET synchronous_commit = off")  # a commit a turn need not wait for the disk
        cursor.execute(HISTORY_TURNS, {
            "campaign": campaign.pk, "start": start, "turn_seconds": HISTORY_TURN.total_seconds(),
            "lease_seconds": campaign.lease_seconds, "task_kind": TaskKind.PAIRWISE.value,
            "choice": Choice.A.value, "milliseconds": HISTORY_ANSWER_MILLISECONDS, "unit": answer_unit(TaskKind.PAIRWISE),
            "answers": answers, "labelers": [labeler.pk for labeler in labelers], "labeler_count": len(labelers),
            "reserved": reserved, "pay": pay, "fee": fee, "paid_seconds": paid_seconds,
        })
        cursor.execute(HISTORY_LOOP)
        cursor.execute("DROP TABLE bench_history_turn")
        cursor.execute("RESET synchronous_commit")
