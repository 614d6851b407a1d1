"""Account pages: invitations, password reset and change, a labeler's own work and earnings.

Django's auth views keep their own URL names (no namespace), which they and their templates reverse; login and
logout are in config/urls.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from annotator.views import accounts

urlpatterns = [
    path("me/", accounts.my_work, name="my_work"),
    path("invite/<str:secret>/", accounts.invitation_accept_view, name="invitation_accept"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", accounts.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
