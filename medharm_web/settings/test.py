"""Test settings: the real PostgreSQL and Redis that production uses, on throwaway databases."""

from pathlib import Path

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["*"]

# Tests run on PostgreSQL, never on the SQLite fallback: pytest-django creates the test database.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/medharm"),
}
# Parallel test runs (several checkouts, helpers) each name their own test database.
DATABASES["default"]["TEST"] = {"NAME": env.str("MEDHARM_TEST_DATABASE", default="test_medharm")}

# Unit tests run tasks in-process; tests about workers start a real worker against TEST_REDIS_URL.
REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = True
COLLECTION_DISPATCH_IN_THREAD = False  # tests collect synchronously, or on a real worker

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

# Whitenoise indexes STATIC_ROOT when the middleware starts; tests never run collectstatic.
Path(str(STATIC_ROOT)).mkdir(parents=True, exist_ok=True)

# Still Argon2 (same "argon2" hashes, same checks), at a cost fit for thousands of test logins.
PASSWORD_HASHERS = ["tests.hashers.CheapArgon2PasswordHasher"]

# Release files of a test run go to a throwaway directory, never to var/media.
import tempfile  # noqa: E402

MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="medharm-test-media-"))
SENDFILE_ROOT = str(MEDIA_ROOT)
