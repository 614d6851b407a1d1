from django.urls import path

from annotator.views import rounds

app_name = "rounds"

urlpatterns = [
    path("", rounds.campaign_list, name="campaigns"),
    path("<slug:name>/", rounds.campaign_rounds, name="campaign"),
    path("<slug:name>/start/", rounds.round_start_view, name="start"),
    path("<slug:name>/<int:number>/", rounds.round_detail, name="round"),
]
