from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("projects.api.urls")),
    path("api/", include("annotations.api.urls")),
    path("api/", include("inspection.api.urls")),
    path("plain/", include("frontend.plain_urls")),
    path("", include("frontend.urls")),
]
