"""Django settings, read only from environment variables (see config.env)."""
from __future__ import annotations

import re
from pathlib import Path

import dj_database_url

from config.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfiguredEnv(
            "SECRET_KEY must be set when DJANGO_DEBUG is off: for local use (management commands such as "
            "`python manage.py import_dataset`, tests) run with DJANGO_DEBUG=1; in production set SECRET_KEY"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "projects",
    "annotations",
    "inspection",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Body-size limits per endpoint kind and the JSON error envelope for /api/.
    "projects.api.middleware.ApiGuardMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server and worker share the file: wait for locks instead of failing, take
    # the write lock when a transaction starts (no lock-upgrade deadlocks), and let
    # readers run while one process writes (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=30, transaction_mode="IMMEDIATE", init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Counts wrong passwords at every door (API, plain pages, admin): projects.api.throttles.
AUTHENTICATION_BACKENDS = ["projects.auth_backends.ThrottledModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 10, minimum=8)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security (production: see the README's production section) ------------------
# Each variable is named as the Django setting it sets; a typo fails at start-up.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (needed with SECURE_SSL_REDIRECT there).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): the UI is ES modules and a stylesheet from
# our own origin; images, heatmaps and masks come from the API (same origin) or
# canvases (blob:/data:). No inline script anywhere; the API docs page loosens
# style-src for itself only (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
LOGIN_URL = "/login/"

# --- Uploads and image limits ---------------------------------------------------
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 200 * 1024 * 1024, minimum=1)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
# Polygon bounds, checked on the raw input before any geometry work (400 naming the limit).
ANNOTATION_MAX_VERTICES_PER_RING = env_int("ANNOTATION_MAX_VERTICES_PER_RING", 10_000, minimum=3)
ANNOTATION_MAX_RINGS_PER_POLYGON = env_int("ANNOTATION_MAX_RINGS_PER_POLYGON", 2000, minimum=1)  # CamVid labels: up to 1409 rings
ANNOTATION_MAX_POLYGONS_PER_IMAGE = env_int("ANNOTATION_MAX_POLYGONS_PER_IMAGE", 500, minimum=1)
# Bodies of every other API request (JSON) and of anonymous callers: small. Checked
# from Content-Length before anything reads the body (projects.api.middleware).
API_MAX_JSON_BYTES = env_int("API_MAX_JSON_BYTES", 10 * 1024 * 1024, minimum=1024)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32, minimum=8)
# Django's own limit on bodies it reads into memory (forms, request.body); file
# parts of uploads are streamed and do not count.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_JSON_BYTES
# Many images per request are fine (zip archives are the way for thousands).
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_UPLOAD_FILES", 1000, minimum=1)
# Uploaded files over this size are spooled to a temporary file while the request is read.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("UPLOAD_MEMORY_BYTES", 2_621_440, minimum=0)
# Uploads of at least this many files or bytes are checked and stored by an import job
# (202 with the job) instead of inside the request.
UPLOAD_JOB_MIN_FILES = env_int("UPLOAD_JOB_MIN_FILES", 50, minimum=1)
UPLOAD_JOB_MIN_BYTES = env_int("UPLOAD_JOB_MIN_BYTES", 50 * 1024 * 1024, minimum=1)
FILE_UPLOAD_TEMP_DIR = None

# --- Blob storage ---------------------------------------------------------------
# "database": content-addressed blob table (Postgres or SQLite); "s3": any
# S3-compatible store through django-storages (AWS_* variables).
STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "database", ("database", "s3"))
if STORAGE_BACKEND == "s3":
    _blob_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", required=True),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "file_overwrite": True,
        },
    }
else:
    _blob_storage = {"BACKEND": "projects.storage.DatabaseBlobStorage"}
# Blobs larger than this are stored (and read back) in pieces of this size.
BLOB_CHUNK_BYTES = env_int("BLOB_CHUNK_BYTES", 8 * 1024 * 1024, minimum=1024)
STORAGES = {
    "default": _blob_storage,
    "blobs": _blob_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage" if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- REST API -------------------------------------------------------------------
# API tokens expire after this many hours (then POST /api/auth/token/ again) and
# are revoked on logout and password change.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 7 * 24, minimum=1)
# How long "next item" of the review queue holds a prediction for one reviewer before
# another reviewer may be handed it (a verdict releases it at once).
REVIEW_CLAIM_SECONDS = env_int("REVIEW_CLAIM_SECONDS", 300, minimum=10)
# Review-queue items link their image and heatmap with signed links (projects.api.files),
# valid at least this long: a copied link works until then, even for someone removed since.
SIGNED_FILE_SECONDS = env_int("SIGNED_FILE_SECONDS", 3600, minimum=60)
# Sign-in throttles (projects.api.throttles): wrong passwords per address or
# username within the window before 429, and all sign-in attempts per address.
SIGN_IN_MAX_FAILURES = env_int("SIGN_IN_MAX_FAILURES", 10, minimum=1)
SIGN_IN_FAILURE_WINDOW_SECONDS = env_int("SIGN_IN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=1)
SIGN_IN_RATE = env_str("SIGN_IN_RATE", "60/min")
if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", SIGN_IN_RATE):
    raise ImproperlyConfiguredEnv(f"SIGN_IN_RATE={SIGN_IN_RATE!r} is not a rate like 60/min")
# Throttle counters live in the cache: give several web processes one (redis://...).
CACHE_URL = env_url("CACHE_URL", "locmem://", schemes=("locmem", "redis", "rediss"))
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if CACHE_URL.startswith("locmem")
    else {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
}
# The OpenAPI schema and its docs page need a signed-in user unless this opens them.
API_SCHEMA_PUBLIC = env_bool("API_SCHEMA_PUBLIC", False)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "projects.api.tokens.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "projects.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {"sign_in": SIGN_IN_RATE},
    "DEFAULT_PAGINATION_CLASS": "projects.api.pagination.Pagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "projects.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Anomaly inspection API",
    "DESCRIPTION": "Projects, images, polygon annotations, training, model versions, predictions and reviews.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["projects.api.schema.SchemaAccess"],  # API_SCHEMA_PUBLIC
    # The docs page loads Swagger UI from our own static files (no CDN: works offline).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ProjectKindEnum": "projects.models.Project.Kind",
        "JobKindEnum": "projects.models.Job.Kind",
    },
}

# --- Celery ---------------------------------------------------------------------
# Default: kombu's filesystem transport under var/ (no server needed, the demo);
# Redis in docker compose and CI.
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "memory")
)
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast exchanges (pidbox) go here too, not into the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis"):
    # A key prefix keeps several users of one Redis (parallel test runs) apart.
    _broker_key_prefix = env_str("CELERY_BROKER_KEY_PREFIX", "")
    if _broker_key_prefix:
        CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": _broker_key_prefix}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
# Job runner (projects.jobs): progress writes at most this often; a running job's
# heartbeat is refreshed this often; a job silent for longer than the last one
# is failed as "worker lost" by projects.jobs.jobs_sweep_stale.
JOB_PROGRESS_MIN_INTERVAL = 1.0
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 15, minimum=0)
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 300, minimum=10)
# Broker outages (projects.jobs): a request that starts a job checks the broker
# first (this many seconds at most) and answers 503 when it does not answer; a
# job whose message could not be sent after commit is sent again by the beat
# sweep once it is this old; a job no worker started within the last limit is
# failed with a reason (so none stays queued forever).
JOB_BROKER_TIMEOUT_SECONDS = env_int("JOB_BROKER_TIMEOUT_SECONDS", 2, minimum=1)
JOB_RESEND_AFTER_SECONDS = env_int("JOB_RESEND_AFTER_SECONDS", 30, minimum=1)
JOB_QUEUED_MAX_SECONDS = env_int("JOB_QUEUED_MAX_SECONDS", 6 * 3600, minimum=10)
CELERY_BROKER_CONNECTION_TIMEOUT = JOB_BROKER_TIMEOUT_SECONDS
CELERY_TASK_ROUTES = {
    "inspection.tasks.train_model": {"queue": "gpu"},
    "inspection.tasks.run_inference": {"queue": "gpu"},
    "inspection.tasks.evaluate_model": {"queue": "gpu"},
}
# Time limits per task kind (seconds): the soft limit fails the job with a
# reason; the hard one, a minute later, kills a stuck worker process.
# Backbone weights files a training config may name (config.weights_path): only
# files inside this folder, so an admin's config cannot open other server paths.
INSPECTION_WEIGHTS_DIR = Path(env_str("INSPECTION_WEIGHTS_DIR", str(VAR_DIR / "weights")))
INSPECTION_TRAINING_SOFT_TIME_LIMIT = env_int("INSPECTION_TRAINING_SOFT_TIME_LIMIT", 4 * 3600, minimum=10)
INSPECTION_INFERENCE_SOFT_TIME_LIMIT = env_int("INSPECTION_INFERENCE_SOFT_TIME_LIMIT", 3600, minimum=10)
# Beat: fail jobs whose worker died; start trainings that retraining policies ask for.
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "inspection.tasks.sweep_stale_jobs", "schedule": 60.0},
    "sweep-queued-jobs": {"task": "projects.tasks.sweep_queued_jobs", "schedule": 60.0},
    "check-retraining": {"task": "inspection.tasks.check_retraining", "schedule": 120.0},
    "collect-blobs": {"task": "projects.tasks.collect_blobs", "schedule": 24 * 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
