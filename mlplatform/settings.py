"""Steward settings: everything that differs between machines comes from the environment.

The defaults suit a laptop (SQLite and artifacts under var/, an embedded broker).
With DEBUG off a missing SECRET_KEY stops start-up rather than running on a
guessable key.
"""

import datetime as dt
import importlib.util
import re
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("STEWARD_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
SECRET_KEY_FILE = VAR_DIR / "secret_key"
if not SECRET_KEY and SECRET_KEY_FILE.exists():
    # `make run` writes a random key here on first start (scripts/ensure_secret_key.py).
    SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"SECRET_KEY must be set when DEBUG is off (or a key kept in {SECRET_KEY_FILE}, "
            "which `make run` creates)."
        )
    SECRET_KEY = "insecure-development-key"  # noqa: S105 - only ever used with DEBUG on

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "csp",
    "core",
    "accounts",
    "experiments",
    "datasets",
    "training",
    "registry",
    "monitoring",
    "governance",
    "mlflow_compat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mlflow_compat.middleware.MlflowNulInUrlMiddleware",
    "accounts.middleware.NulInUrlMiddleware",
    "core.middleware.RequestContextMiddleware",
    "core.middleware.DomainErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, so it turns a log-in refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mlplatform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

WSGI_APPLICATION = "mlplatform.wsgi.application"

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'steward.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while the other writes;
    # the timeout makes a writer wait for the lock instead of failing at once.
    # Connections are kept (CONN_MAX_AGE) as on PostgreSQL: closing the last
    # connection to a WAL database checkpoints it, a cost no request should pay.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # The test database is a file too, not memory: the SDK, live-server and worker tests start
    # second processes that must open it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out client before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# Failed log-ins (django-axes, on /accounts/login/ and /admin/login/): LOGIN_FAILURE_LIMIT failures
# for one username, or from one address, within LOGIN_COOLOFF_MINUTES lock that username or
# address out until the failures are that old. Staff unlock in the admin or with axes_reset.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# Attempts while locked out do not prolong the lock, so the page can say when it ends.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success must not clear failures: one's own log-in would wipe the count of the address
# (and of every username tried from it), and guessing could go on.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "accounts.views.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_address"
AXES_VERBOSE = False  # no banner on every start of every command
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT must be at least 1.")
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Plotly's JavaScript arrives inside the pinned Python package; serve it from here. Found
    # without importing plotly, which a web worker needs only for a page that draws a chart.
    ("vendor/plotly", Path(importlib.util.find_spec("plotly").origin).parent / "package_data"),
    # uPlot (metric line charts) is an npm package pinned in package-lock.json; `make install`
    # runs `npm ci`, the Docker build copies it from its node stage.
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic (run by `make run` and the Docker build) writes each file under a content hash,
    # plus a gzip copy; WhiteNoise serves those compressed with a year-long, immutable
    # Cache-Control, so Plotly (4.8 MB raw, ~1.4 MB gzip) is fetched once per release.
    "staticfiles": {"BACKEND": "mlplatform.staticfiles.StaticStorage"},
}
# Without a current collectstatic (tests, a fresh checkout) pages link the unhashed names and
# WhiteNoise serves them from the finders, with the short default max-age.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False
# Under pytest the hashed names are not used: Django's test live server answers /static/ itself,
# from the source folders, by plain names only.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default="pytest" not in sys.modules)

# Artifacts: a local folder by default, S3-compatible object storage by setting.
ARTIFACT_STORAGE = env.str("ARTIFACT_STORAGE", default="local")
ARTIFACT_ROOT = Path(env.str("ARTIFACT_ROOT", default=str(VAR_DIR / "artifacts")))
if ARTIFACT_STORAGE == "s3":
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET"),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default=None),
            "access_key": env.str("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default=None),
            "region_name": env.str("S3_REGION", default=None),
            "file_overwrite": True,
        },
    }
elif ARTIFACT_STORAGE == "local":
    STORAGES["artifacts"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    }
else:
    raise ImproperlyConfigured("ARTIFACT_STORAGE must be 'local' or 's3'.")

MAX_ARTIFACT_BYTES = env.int("MAX_ARTIFACT_BYTES", default=5 * 1024**3)
# Request bodies other than artifact streams (JSON batches) stay small.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_JSON_BYTES", default=20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["accounts.json_input.JSONParser"],
    "EXCEPTION_HANDLER": "core.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "accounts.schema.StewardAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of Steward that append to X-Forwarded-For; the client address is the
    # one the outermost of them saw. With 0 the header is ignored (clients can forge it).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    # Failed bearer tokens per client address (accounts.throttling); empty turns it off.
    "DEFAULT_THROTTLE_RATES": {"token_failure": env.str("API_TOKEN_FAILURE_RATE", default="20/min") or None},
}
# The throttle's counts live in this cache (read and written on failures only): the default
# counts in each process on its own, redis://… across processes and machines.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
_token_failure_rate = REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token_failure"]
_RATE_RE = r"[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)"
if _token_failure_rate and not re.fullmatch(_RATE_RE, _token_failure_rate):
    raise ImproperlyConfigured("API_TOKEN_FAILURE_RATE must look like '20/min' (per s, min, hour or day).")
SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": "Experiment tracking and model governance.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mlplatform.openapi.serving_endpoint",
    ],
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: kombu's filesystem transport, a real queue in a
    # folder, so `make run` needs no server and still runs a real worker.
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue tasks are sent to and workers read unless told otherwise (installations sharing a broker).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "jobs-reap-stale": {"task": "experiments.tasks.jobs_reap_stale_task", "schedule": 60.0},
    "idempotent-requests-prune": {
        "task": "experiments.tasks.idempotent_requests_prune_task", "schedule": 3600.0,
    },
    "trash-purge": {"task": "experiments.tasks.trash_purge_schedule_task", "schedule": 3600.0},
}
# Stored answers to Idempotency-Key requests are pruned after this many days.
IDEMPOTENCY_KEEP_DAYS = env.int("IDEMPOTENCY_KEEP_DAYS", default=7)
# A running job whose heartbeat is older than this is taken as dead.
JOB_STALE_AFTER_SECONDS = env.int("JOB_STALE_AFTER_SECONDS", default=300)
# Deleted runs and experiments stay in the trash (restorable) this many days before the purge job
# removes them and their artifact files.
TRASH_RETENTION_DAYS = env.int("TRASH_RETENTION_DAYS", default=30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind TLS (see the README): redirect plain HTTP, and tell browsers to use HTTPS only.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container's health check asks over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# A TLS-terminating proxy's header that says the request came over HTTPS, e.g.
# "X-Forwarded-Proto: https". Set it only if the proxy always sets (or strips) that header.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition(":")
    if not _name.strip() or not _value.strip():
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https'.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip())

# Content Security Policy (django-csp) on every response: scripts, styles, images and
# connections from this origin only. Every script is a file in static/: no inline script,
# no inline event handler. 'unsafe-eval' is there for Plotly's WebGL charts (scattergl,
# parallel coordinates), whose regl engine compiles its draw calls with Function(); without
# it they show "WebGL is not supported". htmx's own eval is turned off (base.html). Styles
# also allow inline ones, as Plotly and htmx set style elements and attributes as they
# draw. Images may also be data: URIs (Plotly's layout images and icons) and blob:
# (Plotly's "download as PNG").
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Pickle/joblib model files run whatever code they carry when loaded: never loaded unless this
# is on, and then only the exact files (sha256) an instance administrator trusted.
ALLOW_PICKLE_MODELS = env.bool("ALLOW_PICKLE_MODELS", default=False)
# Who may create projects (and so own one): "everyone" or "staff".
PROJECT_CREATION = env.str("PROJECT_CREATION", default="everyone")
if PROJECT_CREATION not in ("everyone", "staff"):
    raise ImproperlyConfigured("PROJECT_CREATION must be 'everyone' or 'staff'.")

# Model serving: rows per predict request (more is a 413), loaded models kept per
# process, and how the prediction log is batched off the request path.
SERVING_MAX_ROWS = env.int("SERVING_MAX_ROWS", default=10_000)
SERVING_CACHE_MODELS = env.int("SERVING_CACHE_MODELS", default=8)
PREDICTION_LOG_BACKGROUND = env.bool("PREDICTION_LOG_BACKGROUND", default=True)
PREDICTION_LOG_FLUSH_SECONDS = env.float("PREDICTION_LOG_FLUSH_SECONDS", default=0.5)
PREDICTION_LOG_BATCH_ROWS = env.int("PREDICTION_LOG_BATCH_ROWS", default=5000)
PREDICTION_LOG_MAX_QUEUED_ROWS = env.int("PREDICTION_LOG_MAX_QUEUED_ROWS", default=200_000)
BATCH_SCORE_MAX_ROWS = env.int("BATCH_SCORE_MAX_ROWS", default=5_000_000)

# Governance notifications: review requests and decisions are emailed through Django's mail
# backend (the console by default: mail is printed, not sent) and link back to this address.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend: one file per message here.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="steward@localhost")
# Governance analyses (background jobs): rows a fairness audit reads at most (a larger
# evaluation set is sampled, seeded), bootstrap resamples for its informational confidence
# intervals, and the rows and background rows a SHAP explanation uses (permutation, the slow
# explainer, explains fewer rows).
FAIRNESS_MAX_ROWS = env.int("FAIRNESS_MAX_ROWS", default=200_000)
FAIRNESS_BOOTSTRAP_SAMPLES = env.int("FAIRNESS_BOOTSTRAP_SAMPLES", default=100)
EXPLANATION_MAX_ROWS = env.int("EXPLANATION_MAX_ROWS", default=1000)
EXPLANATION_PERMUTATION_ROWS = env.int("EXPLANATION_PERMUTATION_ROWS", default=100)
EXPLANATION_BACKGROUND_ROWS = env.int("EXPLANATION_BACKGROUND_ROWS", default=100)
# Monitoring: the most predictions one drift report reads from the log (the newest ones), and
# whether webhooks may go to loopback, private and link-local addresses (off: a webhook URL
# cannot reach services inside the network). Alert emails go through Django's EMAIL_* settings.
MONITOR_WINDOW_MAX_ROWS = env.int("MONITOR_WINDOW_MAX_ROWS", default=200_000)
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
