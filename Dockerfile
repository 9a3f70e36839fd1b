# One image for web, workers and beat; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/var/lib/anomaly

# glib: OpenCV; curl: the web health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch first, pinned, so nothing later pulls another build of it (CUDA wheels from
# PyPI's default index work on the GPU worker with the NVIDIA container runtime).
RUN pip install torch==2.14.1 torchvision==0.29.1
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 app \
    && mkdir -p "$VAR_DIR" && chown -R app "$VAR_DIR" \
    && DJANGO_DEBUG=0 SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput \
    && chown -R app "$VAR_DIR"
USER app

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
