from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Swagger UI styles its widgets inline; its script comes from a URL (the split view), not inline.
docs_view = csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", docs_view, name="api-docs"),
    path("api/", include("projects.api.urls")),
    path("api/", include("annotations.api.urls")),
    path("api/", include("inspection.api.urls")),
    path("plain/", include("frontend.plain_urls")),
    path("", include("frontend.urls")),
]
