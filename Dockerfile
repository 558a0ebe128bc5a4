# The vsphere-ha-stack image: one `vha` command for the exporter (`vha exporter`), the
# webhook remediator (`vha remediator`) and `vha check-config`. docker-compose.yml builds it
# for both services; docs/deploy.md explains how to run it elsewhere.
#
#   docker build -t vsphere-ha-stack .
#   docker run --rm -v "$PWD/config.yml:/etc/vha/config.yml:ro" -p 9272:9272 \
#     vsphere-ha-stack exporter --config /etc/vha/config.yml
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project (and its dependencies from PyPI) from a throw-away copy of the source;
# .dockerignore keeps the virtualenv, caches and build output out of it.
WORKDIR /tmp/src
COPY pyproject.toml README.md ./
COPY vcenter/ vcenter/
COPY exporter/ exporter/
COPY remediator/ remediator/
COPY sim/ sim/
COPY vha/ vha/
RUN pip install . \
 && rm -rf /tmp/src

# An unprivileged user; /var/lib/vha holds the remediator's journal (a volume in compose).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/vha --create-home vha
USER vha
WORKDIR /var/lib/vha

# 9272: exporter /metrics; 9273: remediator webhook and /metrics.
EXPOSE 9272 9273
ENTRYPOINT ["vha"]
CMD ["--help"]
