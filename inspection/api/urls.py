from django.urls import path, re_path

from inspection.api import annotation, jobs, views

urlpatterns = [
    path("pipelines/", views.PipelineListView.as_view(), name="pipeline-list"),
    path("jobs/<int:pk>/", jobs.JobDetailView.as_view(), name="job-detail"),
    re_path(r"^jobs/(?P<pk>\d+)/cancel/?$", jobs.JobCancelView.as_view(), name="job-cancel"),
    path("projects/<int:pk>/jobs/", jobs.ProjectJobListView.as_view(), name="project-job-list"),
    path("projects/<int:pk>/training-jobs/", views.TrainingJobView.as_view(), name="training-jobs"),
    path("projects/<int:pk>/inference-jobs/", views.InferenceJobView.as_view(), name="inference-jobs"),
    path("projects/<int:pk>/model-versions/", views.ModelVersionListView.as_view(), name="model-version-list"),
    path("projects/<int:pk>/review-queue/", views.ReviewQueueView.as_view(), name="review-queue"),
    path("projects/<int:pk>/review-queue/next", views.ReviewQueueNextView.as_view(), name="review-queue-next"),
    path("projects/<int:pk>/retrain-policy/", views.RetrainPolicyView.as_view(), name="retrain-policy"),
    path("model-versions/<int:pk>/", views.ModelVersionDetailView.as_view(), name="model-version-detail"),
    re_path(r"^model-versions/(?P<pk>\d+)/activate/?$", views.ModelVersionActivateView.as_view(), name="model-version-activate"),
    re_path(r"^model-versions/(?P<pk>\d+)/evaluate/?$", views.ModelVersionEvaluateView.as_view(), name="model-version-evaluate"),
    path("metrics/", views.MetricCatalogueView.as_view(), name="metric-catalogue"),
    path("reviews/<int:pk>/", views.ReviewDetailView.as_view(), name="review-detail"),
    path("predictions/<int:pk>/", views.PredictionDetailView.as_view(), name="prediction-detail"),
    path("predictions/<int:pk>/heatmap.png", views.PredictionHeatmapView.as_view(), name="prediction-heatmap"),
    path("predictions/<int:pk>/class_mask.png", views.PredictionClassMaskView.as_view(), name="prediction-class-mask"),
    path("predictions/<int:pk>/class-map.png", views.PredictionClassMapView.as_view(), name="prediction-class-map"),
    re_path(r"^predictions/(?P<pk>\d+)/review/?$", views.PredictionReviewView.as_view(), name="prediction-review"),
    path("images/<int:pk>/predictions/", views.ImagePredictionListView.as_view(), name="image-predictions"),
    path("projects/<int:pk>/annotation-queue/", annotation.AnnotationQueueView.as_view(), name="annotation-queue"),
    re_path(r"^model-versions/(?P<pk>\d+)/artifact/?$", annotation.ModelVersionArtifactView.as_view(),
            name="model-version-artifact"),
]
