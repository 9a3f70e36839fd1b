"""python manage.py import_dataset --project SLUG [--create] --format mvtec|via|coco|labelme|semantic PATH

Runs the same import as the API's background job, in this process, to
completion; PATH is a dataset folder or a zip archive. Exits non-zero with the
reason when the import fails (nothing is saved then).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.importers import IMPORT_FORMATS, archive_unpack, dataset_import
from projects.errors import ApplicationError
from projects.models import Project
from projects.services import project_create


class Command(BaseCommand):
    help = "Import a dataset (MVTec AD folder, VIA 1.x, COCO or LabelMe) into a project."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="slug of the project")
        parser.add_argument("--create", action="store_true", help="create the project when it does not exist")
        parser.add_argument("--format", required=True, choices=IMPORT_FORMATS)
        parser.add_argument("path", help="dataset folder or .zip archive")

    def handle(self, *args, project: str, create: bool, format: str, path: str, **options):
        source = Path(path)
        if not source.exists():
            raise CommandError(f"{source}: no such file or folder")
        target = Project.objects.filter(slug=project).first()
        try:
            if target is None:
                if not create:
                    raise CommandError(f"no project with slug {project!r} (add --create to create it)")
                # Class-index label images only make sense in a road-scene project.
                kind = Project.Kind.ROAD_SCENE if format == "semantic" else Project.Kind.UNSUPERVISED
                target = project_create(name=project, slug=project, created_by=None, kind=kind)
                self.stdout.write(f"created project {project!r}")
            summary = self._import(target, source, format)
        except ApplicationError as exc:
            raise CommandError(f"import failed, nothing was saved: {exc.message}") from None
        self.stdout.write(self.style.SUCCESS(
            f"imported {summary['images_created']} images ({summary['annotated_images']} annotated, "
            f"{summary['polygons']} polygons, {summary['duplicates']} duplicates skipped) into {project!r}: "
            + ", ".join(f"{k} {v}" for k, v in summary["by_split_state"].items())
        ))

    def _import(self, project: Project, source: Path, fmt: str) -> dict:
        last = {"stage": None}

        def progress(stage: str, fraction: float) -> None:
            if stage != last["stage"]:
                last["stage"] = stage
                self.stdout.write(f"  {stage}...")

        if source.is_dir():
            return dataset_import(project=project, folder=source, fmt=fmt, actor=None, progress=progress)
        with tempfile.TemporaryDirectory(prefix="import-") as tmp:
            archive_unpack(source.read_bytes(), Path(tmp), name=source.name)
            return dataset_import(project=project, folder=Path(tmp), fmt=fmt, actor=None, progress=progress)
