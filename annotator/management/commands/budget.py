"""`python manage.py budget [--campaign NAME] [--verify]`: the budget page's summary in the terminal, or a check
of the memoised ledger sums."""

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from annotator.selectors.budget import BudgetSummary, campaign_budget_summary, campaigns_for_budget, ledger_prefix_check


def _amount(value: Decimal | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:.{places}f}"


class Command(BaseCommand):
    help = "Print each campaign's money and GPU-hour budget: spent, reserved, remaining, breakdowns, projection."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", help="Only this campaign (by name).")
        parser.add_argument(
            "--verify", action="store_true",
            help="Only re-add each campaign's memoised ledger sum from its entries; fail if any differs.",
        )

    def handle(self, *args, campaign=None, verify=False, **options):
        campaigns = campaigns_for_budget()
        if campaign:
            campaigns = campaigns.filter(name=campaign)
            if not campaigns.exists():
                raise CommandError(f"No campaign named {campaign!r}.")
        if verify:
            self._verify(campaigns)
            return
        now = timezone.now()
        for index, item in enumerate(campaigns):
            if index:
                self.stdout.write("")
            self._print(campaign_budget_summary(campaign=item, now=now))

    def _verify(self, campaigns) -> None:
        wrong = []
        for item in campaigns:
            check = ledger_prefix_check(campaign=item)
            line = (
                f"{item.name}: memo {check.memo} over {check.entries} entries up to id {check.end_id}; "
                f"the entries add up to {check.recomputed}"
            )
            if check.ok:
                self.stdout.write(self.style.SUCCESS(f"ok     {line}"))
            else:
                self.stdout.write(self.style.ERROR(f"WRONG  {line}"))
                wrong.append(item.name)
        if wrong:
            raise CommandError(f"The memoised ledger sum is wrong for: {', '.join(wrong)}. Please report this.")

    def _print(self, s: BudgetSummary) -> None:
        cur = s.campaign.currency
        write = self.stdout.write
        write(self.style.MIGRATE_HEADING(f"{s.campaign.name}: {s.campaign.title}"))
        budget = "no cap" if s.money.budget is None else f"{_amount(s.money.budget)} {cur}"
        write(
            f"  Money     budget {budget}   spent {_amount(s.money.spent)}   reserved {_amount(s.money.reserved)}"
            f"   remaining {_amount(s.money.remaining)}"
        )
        gpu_budget = "no cap" if s.gpu.budget_hours is None else f"{_amount(s.gpu.budget_hours)} h"
        write(
            f"  GPU       budget {gpu_budget}   used {_amount(s.gpu.used_hours)} h"
            f"   remaining {_amount(s.gpu.remaining_hours)} h   cost {_amount(s.gpu.cost)} {cur}"
        )
        c = s.costs
        write(
            f"  Items     {c.items} judged, {c.useful} useful   labeling cost per item {_amount(c.labeling_per_item, 4)}"
            f"   per useful item {_amount(c.labeling_per_useful, 4)}   all costs per useful item"
            f" {_amount(c.total_per_useful, 4)}"
        )
        p = s.projection
        if p.spent_in_window <= 0:
            write("  Forecast  nothing spent in the last 7 days")
        elif p.remaining is None:
            write(f"  Forecast  {_amount(p.spend_per_day)} {cur} a day; no money cap")
        else:
            items = "" if p.items_left is None else f"{p.items_left} more items, "
            write(
                f"  Forecast  at {_amount(p.spend_per_day)} {cur} a day the money lasts {items}"
                f"until about {p.runs_out_at:%Y-%m-%d %H:%M} UTC"
            )
        write("  By category")
        for row in s.categories:
            write(f"    {row.label:<14} {row.entries:>7} entries {_amount(row.amount):>14}")
        write("  By round")
        for row in s.rounds:
            name = f"round {row.round.number}" if row.round else "no round"
            write(
                f"    {name:<14} {row.items:>7} items   labeling {_amount(row.labeling):>10}   gpu {_amount(row.gpu):>10}"
                f" ({_amount(row.gpu_hours)} h)   other {_amount(row.other):>10}   total {_amount(row.total):>10}"
            )
        write("  By labeler")
        for row in s.labelers:
            hourly = _amount(row.effective_hourly)
            flag = "  UNDERPAID" if row.underpaid else ""
            write(
                f"    {row.username:<20} {row.kind:<10} {row.items:>6} items {row.seconds_on_page:>10.0f} s"
                f"   earned {_amount(row.earned):>10}   {hourly:>8} {cur}/h{flag}"
            )
