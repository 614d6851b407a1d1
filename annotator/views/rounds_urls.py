from django.urls import path

from annotator.views import evaluation, rounds

app_name = "rounds"

urlpatterns = [
    path("", rounds.campaign_list, name="campaigns"),
    path("<slug:name>/", rounds.campaign_rounds, name="campaign"),
    path("<slug:name>/start/", rounds.round_start_view, name="start"),
    path("<slug:name>/<int:number>/", rounds.round_detail, name="round"),
    path("<slug:name>/evaluation/", evaluation.evaluation_page, name="evaluation"),
    path("<slug:name>/evaluation/start/", evaluation.evaluation_start_view, name="evaluation_start"),
    path("<slug:name>/evaluation/refresh/", evaluation.evaluation_refresh_view, name="evaluation_refresh"),
    path("<slug:name>/evaluation/<int:number>/close/", evaluation.evaluation_close_view, name="evaluation_close"),
    path("<slug:name>/evaluation/<int:number>/resume/", evaluation.evaluation_resume_view, name="evaluation_resume"),
    path("<slug:name>/evaluation/leaderboard.csv", evaluation.leaderboard_csv, name="evaluation_leaderboard_csv"),
    path("<slug:name>/evaluation/leaderboard.json", evaluation.leaderboard_json, name="evaluation_leaderboard_json"),
]
