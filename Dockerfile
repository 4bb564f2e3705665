# The MedHarm image: one image for the web server (gunicorn), the Celery worker and beat.
# Configuration comes from the environment at run time (see README, "Configuration").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 medharm

# Requirements first, so that a code change does not reinstall every package.
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt -c requirements/lock.txt

COPY . .

# Static files are collected at build time (whitenoise serves them); the values below exist only
# so that production settings load here (nothing connects to them), and are not kept in the image.
RUN DJANGO_SETTINGS_MODULE=medharm_web.settings.production \
    DJANGO_SECRET_KEY=collectstatic-only-not-a-secret \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R medharm:medharm /app/var

USER medharm
ENV DJANGO_SETTINGS_MODULE=medharm_web.settings.production
EXPOSE 8000
CMD ["gunicorn", "medharm_web.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
