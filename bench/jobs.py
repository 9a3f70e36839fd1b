"""Jobs benchmark: the inspection loop timed through a real Celery worker process.

Usage (from the repository root)::

    .venv/bin/python bench/jobs.py                 # demo set-up: SQLite + filesystem broker in a temp folder
    .venv/bin/python bench/jobs.py --extra 200     # more images for the batch-inference figure
    .venv/bin/python bench/jobs.py --device cuda --extra 2000 --size 256 --config '{"image_size": 256, "batch_size": 64}'

It builds the ``make demo`` project (generated textured surfaces, 24 normal
train images, 6 normal + 9 defective test images, 128x128) in a fresh
database under a temporary ``VAR_DIR``, starts one worker like the demo does
(``-Q default,gpu --pool solo``) and measures:

1. from launching a ``patchcore`` training (the demo's default config, with
   ``activate``) to an active model version with a prediction on every image:
   training job, activation, the inference job it queues, all through the worker;
2. batch inference images/s through the worker: ``--extra`` more generated
   images are uploaded (the upload hook predicts them), then one inference job
   re-scores every image of the project (decode -> predict -> heatmap PNG ->
   database rows); images/s over the job's run time, and over launch -> done
   (queue latency included).

``--device cpu`` hides any GPU from the worker (``CUDA_VISIBLE_DEVICES=``);
``--device cuda`` refuses to run without one; ``auto`` takes what is there.

``DATABASE_URL`` / ``CELERY_BROKER_URL`` in the environment are used instead of
the demo defaults when set. Prints one markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", type=int, default=61, help="generated images added before the batch inference (default 61: 100 in all)")
    parser.add_argument("--size", type=int, default=128, help="side of the generated extra images (default 128, as the demo's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where the worker predicts")
    parser.add_argument("--config", default="{}", help="patchcore config overrides as JSON, e.g. '{\"batch_size\": 64}'")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows (and how they were made) to this file")
    args = parser.parse_args()
    args.config = json.loads(args.config)
    sys.path.insert(0, str(ROOT))
    from bench.common import run_info

    run = run_info("bench/jobs.py", sys.argv[1:])  # the code as it was at the start
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device here (use --device cpu)")

    var_dir = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    os.environ.update(VAR_DIR=str(var_dir), DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from projects.demo import demo_project_ensure, demo_users_ensure

    users = demo_users_ensure()
    project = demo_project_ensure(users=users, log=lambda line: None)
    n_images = project.images.count()
    worker, log_path = start_worker(var_dir, args.device)
    try:
        rows = measure(project, users, n_images, args)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    setting = (f"Jobs through one Celery worker (--pool solo, device {args.device}), database {engine}, broker {broker}, "
               f"{os.cpu_count()} CPU cores, torch threads {torch_threads()}")
    print(f"\n{setting}\n")
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\n(worker log: {log_path})")
    if args.json:
        from bench.common import write_json

        write_json(args.json, [{"measure": name, "value": value} for name, value in rows], {**run, "setting": setting})


def start_worker(var_dir: Path, device: str = "auto") -> tuple[subprocess.Popen, Path]:
    log_path = var_dir / "worker.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu", "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", "bench@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while "ready." not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    return process, log_path


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def measure(project, users, n_images: int, args) -> list[tuple[str, str]]:
    from inspection.demo import DEMO_PIPELINE, demo_config
    from inspection.models import ModelVersion, Prediction
    from inspection.services.inference import inference_job_start
    from ml.data.synthetic import generate
    from projects.models import Job
    from projects.services import image_upload

    from inspection.services.training import training_job_start

    rows: list[tuple[str, str]] = []

    # 1. Launch -> active model with a prediction on every image.
    launched = time.monotonic()
    config = {**demo_config(project), **args.config}
    job = training_job_start(project=project, user=users["admin"], pipeline=DEMO_PIPELINE, config=config, activate=True)

    def everything_predicted() -> bool:
        active = ModelVersion.objects.filter(project=project, is_active=True).first()
        failed = Job.objects.filter(project=project, status=Job.Status.FAILED).first()
        if failed is not None:
            raise SystemExit(f"job {failed.pk} ({failed.kind}) failed: {failed.error}")
        return active is not None and Prediction.objects.filter(model_version=active).count() == n_images

    wait_for(everything_predicted, args.timeout, "an active model with predictions on every image")
    total = time.monotonic() - launched
    job.refresh_from_db()
    model_version = ModelVersion.objects.get(job=job)
    inference = Job.objects.filter(project=project, kind=Job.Kind.INFERENCE).earliest("created_at")
    rows += [
        (f"launch patchcore training -> active model with predictions on all {n_images} demo images", f"{total:.1f} s"),
        ("  of which the training job ran (snapshot, load, fit, evaluate, save)", f"{seconds(job):.1f} s"),
        ("  of which the inference job ran", f"{seconds(inference):.1f} s"),
        ("  model version", f"v{model_version.number}, config {model_version.config['image_size']} px, "
                            f"image AUROC {model_version.metrics.get('image_auroc', float('nan')):.3f}, "
                            f"pixel AUROC {model_version.metrics.get('pixel_auroc', float('nan')):.3f}"),
    ]

    # 2. Batch inference images/s.
    if args.extra:
        samples = generate(args.extra, 0, size=args.size, seed=99)
        files = [(f"extra_{i:04d}.png", png(sample.image)) for i, sample in enumerate(samples)]
        uploaded = time.monotonic()
        image_upload(project=project, files=files, uploaded_by=users["admin"])
        wait_for(lambda: Prediction.objects.filter(model_version=model_version).count() == n_images + args.extra,
                 args.timeout, "the uploaded images' predictions")
        rows.append((f"upload {args.extra} images -> all predicted automatically", f"{time.monotonic() - uploaded:.1f} s"))
    n_all = project.images.count()
    launched = time.monotonic()
    batch = inference_job_start(project=project, user=users["admin"], model_version=model_version)
    wait_for(lambda: Job.objects.get(pk=batch.pk).is_terminal, args.timeout, "the batch inference job")
    end_to_end = time.monotonic() - launched
    batch.refresh_from_db()
    if batch.status != Job.Status.SUCCEEDED:
        raise SystemExit(f"batch inference {batch.status}: {batch.error}")
    rows += [
        (f"batch inference over {n_all} images ({args.size}x{args.size} extra images, patchcore "
         f"{model_version.config['image_size']} px, batch {model_version.config['batch_size']}), job run time",
         f"{seconds(batch):.1f} s = {n_all / seconds(batch):.1f} images/s"),
        ("  launch -> done (queue latency included)", f"{end_to_end:.1f} s = {n_all / end_to_end:.1f} images/s"),
    ]
    return rows


def seconds(job) -> float:
    return (job.finished_at - job.started_at).total_seconds()


def png(pixels) -> bytes:
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
