# hazmat's sandbox image: the agent's box (and the default image of task services).
#
# Built by `hazmat image build` as hazmat-sandbox:<content-hash> and :latest. No registry
# is needed: BASE defaults to a Debian bookworm base that hazmat bootstraps locally with
# mmdebstrap (see hazmat/sandbox/image.py) when it is missing and cannot be pulled.
# The build context is this file plus supervisor.py and sentinel.py (hazmat/sandbox/).
ARG BASE=hazmat-base:bookworm
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      bash coreutils findutils python3 procps curl netcat-openbsd iproute2 git file less \
      ca-certificates tar gzip \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

RUN useradd --uid 1000 --user-group --create-home --home-dir /home/agent --shell /bin/bash agent \
 && mkdir -p /opt/hazmat

# The in-sandbox supervisor: the container's main process, one persistent JSON-lines channel.
# The network sentinel: run by a sidecar container in the box's network namespace.
COPY supervisor.py sentinel.py /opt/hazmat/
RUN chmod 0755 /opt/hazmat && chmod 0644 /opt/hazmat/supervisor.py /opt/hazmat/sentinel.py \
 && python3 -c "import ast; [ast.parse(open('/opt/hazmat/' + f).read()) for f in ('supervisor.py', 'sentinel.py')]"

LABEL org.opencontainers.image.title="hazmat-sandbox" \
      hazmat.agent_uid="1000"
USER agent
WORKDIR /home/agent
CMD ["python3", "-u", "/opt/hazmat/supervisor.py"]
