from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from annotation import api

router = DefaultRouter()
router.register("cases", api.CaseViewSet, basename="case")
router.register("chains", api.ChainViewSet, basename="chain")
router.register("steps", api.StepViewSet, basename="step")
router.register("assignments", api.AssignmentViewSet, basename="assignment")
router.register("snapshots", api.SnapshotViewSet, basename="snapshot")
router.register("runs", api.RunViewSet, basename="run")

urlpatterns = [
    # The schema and its browser are for signed-in users too: they map every endpoint.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[IsAuthenticated]),
        name="api-docs",
    ),
    path("snapshots/<uuid:uuid>/files/<path:relative>", api.snapshot_file, name="snapshot-file"),
    path("", include(router.urls)),
]
