"""python manage.py export_dataset --project SLUG --format coco|mvtec|semantic OUT

Runs the same export as the API's background job, to completion. OUT is a
folder (created; must be empty) or, when it ends in ``.zip``, an archive.
Exits non-zero with the reason on failure.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.exporters import EXPORT_FORMATS, dataset_export, folder_zip
from projects.errors import ApplicationError
from projects.models import Project


class Command(BaseCommand):
    help = "Export a project's images and annotations as COCO or an MVTec AD folder."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="slug of the project")
        parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
        parser.add_argument("out", help="output folder, or a path ending in .zip")

    def handle(self, *args, project: str, format: str, out: str, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"no project with slug {project!r}")
        out_path = Path(out)
        try:
            if out_path.suffix.lower() == ".zip":
                if out_path.exists():
                    raise CommandError(f"{out_path} already exists")
                with tempfile.TemporaryDirectory(prefix="export-") as tmp:
                    summary = dataset_export(project=target, fmt=format, out=Path(tmp))
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    out_path.write_bytes(folder_zip(Path(tmp)))
            else:
                summary = dataset_export(project=target, fmt=format, out=out_path)
        except ApplicationError as exc:
            raise CommandError(f"export failed: {exc.message}") from None
        skipped = summary.get("skipped_unlabeled", 0)
        self.stdout.write(self.style.SUCCESS(
            f"exported {summary['images']} images of {project!r} as {format} to {out_path}"
            + (f" ({skipped} unlabeled images left out: MVTec has no place for them)" if skipped else "")
        ))
