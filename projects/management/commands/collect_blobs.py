from django.core.management.base import BaseCommand

from projects.services import blob_collect_garbage


class Command(BaseCommand):
    help = "Delete stored bytes (blobs) that no image, mask, heatmap or model artifact references any more."

    def add_arguments(self, parser):
        parser.add_argument("--min-age-hours", type=float, default=24.0, help="Keep blobs younger than this (default 24).")
        parser.add_argument("--dry-run", action="store_true", help="Only count them.")

    def handle(self, *args, min_age_hours, dry_run, **options):
        count = blob_collect_garbage(min_age_s=min_age_hours * 3600, dry_run=dry_run)
        self.stdout.write(f"{'would delete' if dry_run else 'deleted'} {count} unreferenced blob(s)")
