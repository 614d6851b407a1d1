from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotator.forms import SignInForm

handler400 = "annotator.api.errors.bad_request"
handler404 = "annotator.api.errors.not_found"
handler500 = "annotator.api.errors.server_error"

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=SignInForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("annotator.views.accounts_urls")),
    path("admin/", admin.site.urls),
    path("api/", include("annotator.api.urls")),
    path("staff/budget/", include("annotator.views.budget_urls")),
    path("staff/rounds/", include("annotator.views.rounds_urls")),
    path("staff/campaigns/", include("annotator.views.setup_urls")),
    path("staff/members/", include("annotator.views.members_urls")),
    path("", include("annotator.views.labeling_urls")),
]
