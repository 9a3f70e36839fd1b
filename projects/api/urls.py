from django.urls import path

from projects.api import auth, files, images, views

urlpatterns = [
    path("auth/token/", auth.TokenView.as_view(), name="auth-token"),
    path("auth/login/", auth.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", auth.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", auth.MeView.as_view(), name="auth-me"),
    path("auth/password/", auth.PasswordChangeView.as_view(), name="auth-password"),
    path("projects/", views.ProjectListView.as_view(), name="project-list"),
    path("projects/<int:project_id>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<int:project_id>/members/", views.MemberListView.as_view(), name="member-list"),
    path("projects/<int:project_id>/members/<int:user_id>/", views.MemberDetailView.as_view(), name="member-detail"),
    path("projects/<int:project_id>/stats/", views.ProjectStatsView.as_view(), name="project-stats"),
    path("projects/<int:project_id>/audit/", views.AuditEventListView.as_view(), name="project-audit"),
    path("projects/<int:project_id>/images/", images.ProjectImageListView.as_view(), name="image-list"),
    path("images/<int:image_id>/", images.ImageDetailView.as_view(), name="image-detail"),
    path("images/<int:image_id>/file", images.ImageFileView.as_view(), name="image-file"),
    path("images/<int:image_id>/thumbnail", images.ImageThumbnailView.as_view(), name="image-thumbnail"),
    path("files/<str:name>", files.SignedFileView.as_view(), name="signed-file"),
]
