from django.urls import path

from annotator.views import budget

app_name = "budget"

urlpatterns = [
    path("", budget.budget_overview, name="overview"),
    path("<slug:name>/", budget.campaign_budget, name="campaign"),
    path("<slug:name>/ledger/", budget.ledger, name="ledger"),
    path("<slug:name>/ledger/new/", budget.ledger_entry_new, name="entry_new"),
    path("<slug:name>/ledger/<int:entry_id>/reverse/", budget.ledger_entry_reversal, name="entry_reverse"),
    path("<slug:name>/earnings.csv", budget.earnings_csv, name="earnings_csv"),
    path("<slug:name>/ledger.csv", budget.ledger_csv, name="ledger_csv"),
]
