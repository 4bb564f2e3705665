"""Production settings: hardened defaults; every value still comes from the environment."""

from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False
# Required, no defaults: a production process that would fall back to the development key, the
# embedded SQLite file or in-process tasks must refuse to start instead.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES["default"] = {**DATABASES["default"], **env.db_url("DATABASE_URL")}
# A web process keeps its connection between requests (a new one costs a few ms per request,
# more than a granted download's own work); a connection that broke is replaced, not used.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
REDIS_URL = env.str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False

# One cache shared by every web process: allauth's rate limits and its record of used TOTP codes
# (which stops a code being replayed) live in the cache, and a per-process cache would split both.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    },
}

# --- HTTPS behind a reverse proxy -------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"

# The client address for rate limits and lockout: the proxy appends the caller to X-Forwarded-For.
# Set DJANGO_TRUSTED_PROXY_COUNT=0 when nothing sits in front of Django, or clients could pick
# their own address and step around the lockout.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=1)
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip_for_lockout"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Model endpoints --------------------------------------------------------------------------
# Optional allow-list of the hosts model endpoints may call (MEDHARM_MODEL_HOSTS=api.openai.com,
# *.internal.example). Set it in production so a maintainer cannot point a run, and its API key,
# at a listener of their own. Empty (the default) allows any host.
MODEL_HOSTS_ALLOWED = env.list("MEDHARM_MODEL_HOSTS", default=[])

# Gated downloads: Django checks the grant, nginx serves the file from its internal location.
SENDFILE_BACKEND = env.str("SENDFILE_BACKEND", default="django_sendfile.backends.nginx")
