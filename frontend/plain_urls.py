from django.contrib.auth.views import LogoutView
from django.urls import path

from frontend import plain

urlpatterns = [
    path("", plain.projects_page, name="plain-projects"),
    path("login/", plain.PlainLoginView.as_view(), name="plain-login"),
    path("logout/", LogoutView.as_view(next_page="/plain/login/"), name="plain-logout"),
    path("projects/<int:project_id>/", plain.project_page, name="plain-project"),
]
