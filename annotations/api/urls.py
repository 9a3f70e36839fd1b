from django.urls import path, re_path

from annotations.api import views

urlpatterns = [
    path("images/<int:image_id>/annotations/", views.ImageAnnotationsView.as_view(), name="image-annotations"),
    path("images/<int:image_id>/annotation-tools/paint/", views.AnnotationPaintView.as_view(), name="annotation-paint"),
    path("images/<int:image_id>/annotation-tools/box/", views.AnnotationBoxView.as_view(), name="annotation-box"),
    path("images/<int:image_id>/annotation-tools/superpixel/", views.AnnotationSuperpixelView.as_view(),
         name="annotation-superpixel"),
    path("images/<int:image_id>/mask.png", views.ImageMaskView.as_view(), name="image-mask"),
    path("projects/<int:project_id>/label-classes/", views.LabelClassListView.as_view(), name="label-class-list"),
    path("projects/<int:project_id>/label-classes/<int:label_class_id>/", views.LabelClassDetailView.as_view(),
         name="label-class-detail"),
    path("projects/<int:project_id>/imports/", views.ImportListView.as_view(), name="import-list"),
    path("projects/<int:project_id>/exports/", views.ExportListView.as_view(), name="export-list"),
    re_path(r"^projects/(?P<project_id>\d+)/exports/(?P<job_id>\d+)/download/?$", views.ExportDownloadView.as_view(),
            name="export-download"),
]
