# telerounds: one instance. Give several the same REDIS_URL and DATABASE_URL to form one service,
# and one volume at BLOB_DIR (docker-compose.yml mounts /var/lib/telerounds-blobs, created here
# owned by the service's user so that a new volume mounted there is writable by it).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    TELEROUNDS_VAR_DIR=/var/lib/telerounds

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY signaling ./signaling
COPY static ./static
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/telerounds --create-home telerounds \
    && install -d -o telerounds -g telerounds -m 0750 /var/lib/telerounds-blobs

USER 10001:10001
EXPOSE 8080
VOLUME ["/var/lib/telerounds"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status == 200 else 1)"]
CMD ["python", "-m", "server"]
