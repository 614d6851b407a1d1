"""The lease rules as ORM expressions: the database's own functions (annotator/sql/rules.sql), so a query built
with the ORM counts live leases and held slots exactly as a claim does."""

from datetime import datetime

from django.db.models import BooleanField, F, Func, Value
from django.db.models.fields import DateTimeField


class _LeaseRule(Func):
    output_field = BooleanField()

    def __init__(self, now: datetime, *, prefix: str = ""):
        super().__init__(F(f"{prefix}status"), F(f"{prefix}leased_until"), Value(now, output_field=DateTimeField()))


class LeaseLive(_LeaseRule):
    """An assignment leased to a labeler and not yet expired at `now` (`prefix`: the path to the assignment)."""

    function = "annotator_lease_live"


class HoldsSlot(_LeaseRule):
    """An assignment that holds one of its comparison's slots at `now`: answered, or a live lease."""

    function = "annotator_holds_slot"
