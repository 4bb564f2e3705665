"""Test settings: the real PostgreSQL and Redis that production uses, on throwaway databases."""

from pathlib import Path

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["*"]

# Tests run on PostgreSQL: pytest-django creates the test database. Only the tests marked
# ``portable`` also run on SQLite (tests/conftest.py refuses any other selection there).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/medharm"),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: the browser tests' live server and Playwright's event loop each open their
    # own connection, and an in-memory database would be a different one for each.
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / env.str("MEDHARM_TEST_DATABASE", default="test_medharm.sqlite3"))
    }
else:
    # Parallel test runs (several checkouts, helpers) each name their own test database: by default
    # "test_" + the database's own name, so another DATABASE_URL never shares a test database.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("MEDHARM_TEST_DATABASE", default=f"test_{DATABASES['default']['NAME']}")
    }

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
