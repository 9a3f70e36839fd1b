from django.urls import path, re_path

from frontend import views

# UI paths served by the single-page shell (see frontend/static/frontend/js/app.js routes).
urlpatterns = [
    path("", views.app_shell, name="app"),
    path("login/", views.app_shell, name="login"),
    re_path(r"^projects/\d+/(?:.*)$", views.app_shell, name="app-project"),
]
