"""A campaign's money as the cap counts it: budget, spent, reserved, and whether one more item or step fits.

The sums and the check are the database's own rules (annotator/sql/rules.sql: annotator_money), the same that every
claim checks under its lock, read here in one statement (one snapshot).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from annotator.core.pricing import money
from annotator.models import Campaign


@dataclass(frozen=True)
class CampaignMoney:
    budget: Decimal | None  # None: no cap
    spent: Decimal
    reserved: Decimal
    exceeded: bool  # spending `price` more would pass the cap

    @property
    def left(self) -> Decimal | None:
        """What is neither spent nor reserved (None: no cap); negative when a charge went past it."""
        return None if self.budget is None else self.budget - self.spent - self.reserved


def campaign_money(*, campaign_id: int, now: datetime, price: Decimal = Decimal(0)) -> CampaignMoney:
    """The campaign's money at `now`, and whether `price` more would pass its cap."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT budget, spent, reserved, exceeded FROM annotator_money(%s, %s, %s)",
                       [campaign_id, now, price])
        row = cursor.fetchone()
    if row is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}.")
    budget, spent, reserved, exceeded = row
    return CampaignMoney(budget=budget, spent=money(spent), reserved=money(reserved), exceeded=exceeded)
