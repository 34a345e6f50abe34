# One image for every Steward process: web (gunicorn), worker and beat (Celery), migrate.

# Front-end packages from the npm registry, as pinned in package-lock.json.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STEWARD_VAR_DIR=/app/var \
    ARTIFACT_ROOT=/data/artifacts

WORKDIR /app
RUN useradd --create-home --uid 1000 steward

# Dependencies first, so a code change does not reinstall them: the runtime's whole tree, each
# package checked against its hash (make lock writes requirements.lock from requirements.txt).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY . .
COPY --from=assets /assets/node_modules ./node_modules
# Static files are collected into the image (var/static, served by WhiteNoise). The key is a
# placeholder for this build step only; the containers get the real one from .env.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /data/artifacts \
    && chown -R steward:steward /app/var /data/artifacts

USER steward
EXPOSE 8000
CMD ["gunicorn", "mlplatform.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--threads", "4", "--no-control-socket", "--access-logfile", "-"]
