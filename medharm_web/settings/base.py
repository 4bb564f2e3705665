"""Every setting of the platform, read from the environment through one reader (``env``).

With no ``DATABASE_URL`` the platform runs on a SQLite file; with no ``REDIS_URL`` Celery tasks
run in-process. Both defaults exist so that a newcomer can run the platform with one command.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"


class _RecordingEnv(environ.Env):
    """The settings reader, recording every variable name it is asked for: those names are the
    platform's own settings, which no model endpoint may name as its API key variable."""

    names_read: set[str] = set()

    def get_value(self, var: str, *args: object, **kwargs: object) -> object:
        self.names_read.add(var)
        return super().get_value(var, *args, **kwargs)


env = _RecordingEnv()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("MEDHARM_SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "rules.apps.AutodiscoverRulesConfig",
    "simple_history",
    "django_htmx",
    "csp",
    "pgtrigger",
    "audit",
    "accounts",
    "querybank",
    "annotations",
    "evaluations",
    "scoring",
    "judging",
    "releases",
    "access",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body: NUL/surrogates in parameters -> 400, oversized bodies -> 413.
    "core.errors.InputGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.PrivilegedSessionMiddleware",
    "accounts.middleware.StaffMfaRequiredMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "audit.context.AuditRequestMiddleware",
    # AxesMiddleware must be last: it turns a lockout signal into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "medharm_web.urls"
WSGI_APPLICATION = "medharm_web.wsgi.application"
ASGI_APPLICATION = "medharm_web.asgi.application"

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
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'medharm.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(exist_ok=True)  # the embedded default keeps its file under var/
    # The in-process collector writes from its own thread while pages read: WAL lets readers go on,
    # IMMEDIATE transactions and a timeout make writers queue instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# No broker configured: run tasks in the calling process so the platform works with no services.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker waits for a restarted broker however long it takes, rather than exiting after 100 tries.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A collector does not need the broker while it runs (the database is the record): a lost broker
# connection must not cancel it. Celery 6 turns this on by default; keep it off explicitly.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Redis redelivers an unacknowledged (acks-late) message after the visibility timeout. Collector
# tasks run for hours, and a lost collector is replaced by the watchdog within the liveness time,
# so redelivery is only a last resort: a day, so that a long, healthy collector is never doubled.
# Keep-alives and health checks notice a dead broker connection within seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=24 * 3600),
    "socket_keepalive": True,
    "health_check_interval": 10,
    "retry_on_timeout": True,
}
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {"task": "accounts.tasks.sessions_clear_expired", "schedule": 24 * 3600},
    "access-requests-expire": {"task": "access.tasks.requests_expire", "schedule": 3600},
    "audit-seal": {"task": "audit.seal_pending", "schedule": 60},
    "collection-watchdog": {
        "task": "evaluations.runs_watchdog",
        "schedule": env.float("COLLECTION_WATCHDOG_SECONDS", default=15.0),
    },
    "judge-watchdog": {
        "task": "judging.judge_runs_watchdog",
        "schedule": env.float("COLLECTION_WATCHDOG_SECONDS", default=15.0),
    },
}
# How often the watchdog looks for missing collectors (beat; or, with no broker, a thread of the
# web process while runs are running).
COLLECTION_WATCHDOG_SECONDS = env.float("COLLECTION_WATCHDOG_SECONDS", default=15.0)
# A running run whose workers have not reported for this long is handed to a new worker.
COLLECTION_STALE_SECONDS = env.int("COLLECTION_STALE_SECONDS", default=30)
# A collector renews its leases on every heartbeat (each second) to this many seconds ahead, by the
# database clock: the items of a collector that went quiet (killed, frozen, cut off) are claimable
# again this long after its last beat, not after the run's whole lease.
COLLECTION_LIVENESS_SECONDS = env.int("COLLECTION_LIVENESS_SECONDS", default=15)
# Collector tasks per run (a run's own ``workers`` overrides it): each claims batches of the shared
# rows, so a run spreads over as many worker processes as take its tasks.
COLLECTION_WORKERS_PER_RUN = env.int("COLLECTION_WORKERS_PER_RUN", default=1)
# A dispatched collector that has not started within this long counts as lost (its message went
# with a broker restart) and the watchdog dispatches another.
COLLECTION_DISPATCH_GRACE_SECONDS = env.int("COLLECTION_DISPATCH_GRACE_SECONDS", default=120)
# Endpoint limits (concurrency, adaptive back-off, requests and tokens per minute) are shared by
# every collector through this Redis; empty: each collector process enforces them alone.
COLLECTION_LIMITS_REDIS_URL = env.str("COLLECTION_LIMITS_REDIS_URL", default=REDIS_URL)
# With no broker, a started run is collected on a background thread of the web process, so the
# page returns at once and the progress bar has something to show.
COLLECTION_DISPATCH_IN_THREAD = CELERY_TASK_ALWAYS_EAGER

# --- Accounts, authentication and roles ---------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first, so that a locked-out login is refused before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# Adding an address already on another account is refused (allauth would mail its owner).
ACCOUNT_FORMS = {"add_email": "accounts.forms.AddEmailForm"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[MedHarm] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env.str("ACCOUNT_DEFAULT_HTTP_PROTOCOL", default="http")
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "MedHarm"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.lockout.username_for_lockout"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"

# --- Email ------------------------------------------------------------------------------------
# EMAIL_URL such as smtp+tls://user:password@host:587 or consolemail:// (prints mails).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="MedHarm <noreply@medharm.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # Scripts' tokens, stored hashed (rest_framework.authtoken stored them in clear).
        "accounts.authentication.HashedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_permissions.Authenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.ErrorAutoSchema",
    # One error shape and one status per kind for the whole API (core/errors.py).
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.errors.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedHarm API",
    "DESCRIPTION": "Query bank, annotation and evaluation data of the MedHarm platform.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["accounts.api_permissions.Authenticated"],
    # Two "status" choice sets share a name in the schema; name the campaign one explicitly.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "annotations.models.CampaignStatus",
        "RunStatusEnum": "evaluations.models.RunStatus",
        "JudgeFieldEnum": "judging.parsers.AUDIT_FIELD_CHOICES",
        "JudgeParserEnum": "judging.models.PARSER_CHOICES",
        "JudgeImportFormatEnum": "judging.serializers.IMPORT_FORMAT_CHOICES",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security headers -------------------------------------------------------------------------
# A strict policy: no inline scripts or styles anywhere (templates load static files only).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Sessions are read from the cache and written through to the database (Django's cached_db):
# a request reads its session without a query. Production's cache is the Redis every web process
# shares; the embedded default's is the one process's memory. Nothing deletes session rows behind
# the cache's back (sign-out and expiry go through the session store, which clears both).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Sessions: two weeks for researchers and clinicians (Django's default); the people who must use a
# second factor (``accounts.policy.is_mfa_required``: staff, maintainers, the data committee,
# adjudicators, delegated reviewers) get a privileged session instead, which ends after
# PRIVILEGED_SESSION_IDLE seconds without a request and PRIVILEGED_SESSION_MAX after sign-in,
# whatever the activity (``accounts.middleware.PrivilegedSessionMiddleware``; docs/security.md).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
PRIVILEGED_SESSION_IDLE = env.int("PRIVILEGED_SESSION_IDLE", default=30 * 60)
PRIVILEGED_SESSION_MAX = env.int("PRIVILEGED_SESSION_MAX", default=8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Internationalisation, static files -------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Until collectstatic has run (development, tests), whitenoise serves files from the finders.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGGING: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "quiet_refusals": {"()": "medharm_web.log_filters.QuietRefusals"},
        "drop_refusals": {"()": "medharm_web.log_filters.QuietRefusals", "drop": True},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Django's own console handler would print each of these a second time: root prints them once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"level": "INFO", "filters": ["quiet_refusals"]},
        "django.server": {"level": "INFO", "filters": ["drop_refusals"]},
    },
}

# --- Releases and data access -----------------------------------------------------------------
# Release files live in the default storage under this prefix. Gated downloads hand the file to
# the web server: X-Accel-Redirect to nginx's internal location under production settings,
# streaming with range requests from Django here (``releases.sendfile_streaming``).
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "media/"
RELEASES_STORAGE_PREFIX = "releases"
SENDFILE_BACKEND = env.str("SENDFILE_BACKEND", default="releases.sendfile_streaming")
SENDFILE_ROOT = str(MEDIA_ROOT)
SENDFILE_URL = env.str("SENDFILE_URL", default="/protected")
# Rows per streamed batch when a release is cut (and per Parquet row group).
RELEASE_BATCH_ROWS = env.int("RELEASE_BATCH_ROWS", default=20_000)
ACCESS_GRANT_DEFAULT_DAYS = env.int("ACCESS_GRANT_DEFAULT_DAYS", default=365)
# A request left undecided this long expires (never auto-accepted).
ACCESS_PENDING_EXPIRY_DAYS = env.int("ACCESS_PENDING_EXPIRY_DAYS", default=30)
# A grant may be renewed from this many days before it ends.
ACCESS_RENEWAL_WINDOW_DAYS = env.int("ACCESS_RENEWAL_WINDOW_DAYS", default=60)
RESEARCHER_TOKEN_DEFAULT_DAYS = env.int("RESEARCHER_TOKEN_DEFAULT_DAYS", default=30)
RESEARCHER_TOKEN_MAX_DAYS = env.int("RESEARCHER_TOKEN_MAX_DAYS", default=365)

# --- Platform settings ------------------------------------------------------------------------
# One size limit for every import (query and annotation files; web page, API and command line):
# the files of one import together. A request body over it is refused before it is parsed.
IMPORT_MAX_BYTES = env.int(
    "IMPORT_MAX_BYTES", default=env.int("QUERY_IMPORT_MAX_BYTES", default=50 * 1024 * 1024)
)
QUERY_IMPORT_MAX_BYTES = IMPORT_MAX_BYTES  # the older name, kept for settings files that set it
# Campaign snapshots each web process keeps in memory (``scoring.snapshots``): the pages of a
# campaign viewed after a change read its snapshot once, not once per page. Each holds a campaign's
# labels and responses (tens of MB at 200k responses); 0 keeps none.
SCORING_SNAPSHOTS_KEPT = env.int("SCORING_SNAPSHOTS_KEPT", default=2)

# --- Model endpoints: which key variables and hosts they may use ---------------------------------
# An endpoint's api_key_env must start with MODEL_KEY_ENV_PREFIX or be listed in MODEL_KEY_ENV_NAMES
# (e.g. OPENAI_API_KEY), and is never a variable the platform's own settings read (DJANGO_*,
# DATABASE_URL, REDIS_URL, ...): those are recorded by the reader above as SETTINGS_ENV_NAMES.
MODEL_KEY_ENV_PREFIX = "MEDHARM_KEY_"
MODEL_KEY_ENV_NAMES = env.list("MEDHARM_MODEL_KEY_ENV_NAMES", default=[])
# Hosts model endpoints may point at ("api.openai.com", "*.example.org"); empty: any host.
MODEL_HOSTS_ALLOWED = env.list("MEDHARM_MODEL_HOSTS", default=[])
SETTINGS_ENV_NAMES = _RecordingEnv.names_read
