"""Settings, all read from the environment (see README: Configuration).

Production needs DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS; there is no usable default.
DJANGO_DEBUG=1 (what the demo command sets) allows a development key kept under var/.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from reasoner_site.database import embedded_database_url, parse_database_url
from reasoner_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WORKBENCH_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        if len(key) < 32 and not DEBUG:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    # Development only: one random key per checkout, so sessions survive restarts.
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "annotation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "reasoner_site.urls"
WSGI_APPLICATION = "reasoner_site.wsgi.application"

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
                "annotation.context_processors.roles",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

_database_url = os.environ.get("DATABASE_URL", "")
if not _database_url:
    _database_url = embedded_database_url(VAR_DIR / "pgdata")
DATABASES = {"default": parse_database_url(_database_url)}
# Each server thread keeps its connection this many seconds (0: a new one per request), and
# checks it with a round trip before a request reuses it (off saves that round trip; a
# connection broken meanwhile then fails one request before it is replaced).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DJANGO_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DJANGO_CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["CONN_MAX_AGE"] < 0:
    raise ImproperlyConfigured("DJANGO_CONN_MAX_AGE must be 0 or more seconds")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# htmx comes from the npm registry (package.json) through the setup command.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist")]
WHITENOISE_USE_FINDERS = True

# Content-addressed image store and render cache.
MEDIA_ROOT = Path(env_str("WORKBENCH_MEDIA_DIR", str(VAR_DIR / "media")))
IMAGE_STORE = MEDIA_ROOT / "images"
RENDER_CACHE = MEDIA_ROOT / "renders"
IMPORT_REPORTS = MEDIA_ROOT / "import-reports"
MAX_IMAGE_PIXELS = env_int("WORKBENCH_MAX_IMAGE_PIXELS", 60_000_000)
MAX_UPLOAD_BYTES = env_int("WORKBENCH_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
)

# Background jobs (mining, exports): django-tasks with its database backend; `manage.py
# db_worker` runs them (bin/demo starts one beside the web server).
TASKS = {"default": {"BACKEND": env_str("WORKBENCH_TASK_BACKEND", "django_tasks_db.DatabaseBackend")}}

# LLM mining (`manage.py mine --llm`, the curator's Mining page): any OpenAI-compatible chat
# endpoint (vLLM, a hosted API). Empty base URL or model: LLM mining is off, rules still work.
LLM_BASE_URL = env_str("WORKBENCH_LLM_BASE_URL", "")  # e.g. http://127.0.0.1:8001/v1
LLM_MODEL = env_str("WORKBENCH_LLM_MODEL", "")  # the model name the server knows
LLM_API_KEY = env_str("WORKBENCH_LLM_API_KEY", "")  # empty for servers that need none
LLM_CONCURRENCY = env_int("WORKBENCH_LLM_CONCURRENCY", 4)  # cases in flight at once
LLM_TIMEOUT = env_int("WORKBENCH_LLM_TIMEOUT", 120)  # seconds per request
LLM_MAX_RETRIES = env_int("WORKBENCH_LLM_MAX_RETRIES", 5)  # on 429/5xx, exponential backoff
LLM_CACHE_DIR = Path(env_str("WORKBENCH_LLM_CACHE_DIR", str(VAR_DIR / "llm-cache")))  # replies by prompt hash
if LLM_CONCURRENCY < 1 or LLM_TIMEOUT < 1 or LLM_MAX_RETRIES < 0:
    raise ImproperlyConfigured(
        "WORKBENCH_LLM_CONCURRENCY and WORKBENCH_LLM_TIMEOUT must be at least 1, "
        "WORKBENCH_LLM_MAX_RETRIES at least 0"
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ChestX reasoning workbench API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "WARNING")},
}
