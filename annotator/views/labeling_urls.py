from django.urls import path

from annotator.views import labeling

app_name = "labeling"

urlpatterns = [
    path("", labeling.campaign_list, name="campaign_list"),
    path("campaigns/<slug:campaign_name>/", labeling.campaign_instructions, name="instructions"),
    path("campaigns/<slug:campaign_name>/label/", labeling.label, name="label"),
    path(
        "campaigns/<slug:campaign_name>/items/<int:assignment_id>/answer/",
        labeling.item_answer,
        name="item_answer",
    ),
]
