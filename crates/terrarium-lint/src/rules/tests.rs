//! Per-rule cases: every rule has inputs that must trigger it and inputs that must not.

use std::path::Path;

use crate::config::Config;
use crate::finding::Finding;
use crate::lint::{FileKind, lint_source};

/// A Dockerfile that follows every lesson; each case below breaks one thing.
const GOOD: &str = r#"FROM python:3.12.8-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt ./
RUN pip install --prefix /install --require-hashes -r requirements.txt
COPY . .
FROM python:3.12.8-slim-bookworm
ENV PYTHONUNBUFFERED=1
RUN useradd --system --uid 65532 nonroot
COPY --from=build /install /usr/local
WORKDIR /app
COPY . .
USER 65532:65532
EXPOSE 8000
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]
"#;

const GOOD_COMPOSE: &str = r#"services:
  app:
    build: .
    restart: unless-stopped
    ports:
      - "127.0.0.1:8000:8000"
    environment:
      DATABASE_URL: ${DATABASE_URL:-postgresql://app@db/app}
      SECRET_KEY: ${SECRET_KEY:?set SECRET_KEY}
    healthcheck:
      test: ["CMD", "python", "-c", "print(1)"]
    deploy:
      resources:
        limits:
          memory: 512M
  db:
    image: postgres:17.2-bookworm
    restart: unless-stopped
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready"]
    mem_limit: 1g
volumes:
  pgdata:
"#;

fn lint(name: &str, src: &str) -> Vec<Finding> {
    lint_with(name, src, &Config::default())
}

fn lint_with(name: &str, src: &str, config: &Config) -> Vec<Finding> {
    let path = Path::new(name);
    // The cases' files don't exist, so Kubernetes manifests can't be told by their content.
    let kind = if name == K8S {
        FileKind::Kubernetes
    } else {
        FileKind::for_explicit(path)
    };
    lint_source(path, src, kind, config)
}

/// The name the Kubernetes cases are linted under.
const K8S: &str = "manifest.yaml";

/// A Deployment and a Job that break no Kubernetes rule.
const GOOD_K8S: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
      volumes:
      - name: tmp
        emptyDir: {}
      containers:
      - name: web
        image: registry.example.com/web:1.4.2
        securityContext:
          allowPrivilegeEscalation: false
        readinessProbe:
          httpGet:
            path: /health
            port: 8000
        resources:
          limits:
            memory: 512Mi
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
      containers:
      - name: migrate
        image: registry.example.com/web@sha256:0123
        resources:
          limits:
            memory: 256Mi
"#;

/// GOOD_K8S with the first `from` replaced by `to`.
fn k8s(from: &str, to: &str) -> String {
    assert!(GOOD_K8S.contains(from), "{from}");
    GOOD_K8S.replacen(from, to, 1)
}

fn has(findings: &[Finding], rule: &str) -> bool {
    findings.iter().any(|f| f.rule == rule)
}

/// A Dockerfile: GOOD with `line` replacing the line that starts with `prefix`, or appended
/// before the CMD when `prefix` is empty.
fn edit(prefix: &str, line: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for l in GOOD.lines() {
        if !done && !prefix.is_empty() && l.starts_with(prefix) {
            out.push_str(line);
            out.push('\n');
            done = true;
            continue;
        }
        if !done && prefix.is_empty() && l.starts_with("CMD") {
            out.push_str(line);
            out.push('\n');
            done = true;
        }
        out.push_str(l);
        out.push('\n');
    }
    assert!(done, "no line starts with {prefix:?}");
    out
}

fn edit_compose(find: &str, replace: &str) -> String {
    assert!(GOOD_COMPOSE.contains(find), "{find:?}");
    GOOD_COMPOSE.replacen(find, replace, 1)
}

/// `(rule, file name, source, expected)`: `true` cases must report `rule`, `false` must not.
fn cases() -> Vec<(&'static str, &'static str, String, bool)> {
    let d = |s: &str| s.to_string();
    vec![
        (
            "parse-error",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUNN pip install x\n"),
            true,
        ),
        (
            "parse-error",
            "Dockerfile",
            d("FROM x:1\nCMD ['gunicorn', 'app:app']\n"),
            true,
        ),
        (
            "parse-error",
            "Dockerfile",
            d("FROM x:1\nRUN <<EOF\necho hi\n"),
            true,
        ),
        (
            "parse-error",
            "compose.yaml",
            d("services:\n  app: [\n"),
            true,
        ),
        ("parse-error", "Dockerfile", GOOD.to_string(), false),
        (
            "process-manager",
            "Dockerfile",
            edit("CMD", "CMD [\"supervisord\", \"-n\"]"),
            true,
        ),
        (
            "process-manager",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends cron && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "process-manager",
            "Dockerfile",
            edit("CMD", "CMD service nginx start && gunicorn app:app"),
            true,
        ),
        (
            "process-manager",
            "Dockerfile",
            edit("", "RUN echo supervisord"),
            false,
        ),
        (
            "multiple-processes",
            "Dockerfile",
            edit("CMD", "CMD celery -A app worker & gunicorn app:app"),
            true,
        ),
        (
            "multiple-processes",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"sh\", \"-c\", \"gunicorn app:app && uvicorn x:y\"]",
            ),
            true,
        ),
        (
            "multiple-processes",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"sh\", \"-c\", \"python manage.py migrate && exec gunicorn app:app\"]",
            ),
            false,
        ),
        (
            "ssh-server",
            "Dockerfile",
            edit("CMD", "CMD [\"/usr/sbin/sshd\", \"-D\"]"),
            true,
        ),
        (
            "ssh-server",
            "Dockerfile",
            edit("EXPOSE", "EXPOSE 8000 22"),
            true,
        ),
        (
            "ssh-server",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends openssh-server && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "ssh-server",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "web-server-in-app",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "web-server-in-app",
            "Dockerfile",
            d(
                "FROM nginx:1.27\nRUN apt-get update && apt-get install -y nginx-extras\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
            ),
            false,
        ),
        (
            "dev-server",
            "Dockerfile",
            edit("CMD", "CMD [\"flask\", \"run\", \"--host=0.0.0.0\"]"),
            true,
        ),
        (
            "dev-server",
            "Dockerfile",
            edit("CMD", "CMD python manage.py runserver 0.0.0.0:8000"),
            true,
        ),
        (
            "dev-server",
            "Dockerfile",
            edit("CMD", "CMD [\"uvicorn\", \"app:app\", \"--reload\"]"),
            true,
        ),
        (
            "dev-server",
            "Dockerfile.dev",
            edit("CMD", "CMD [\"flask\", \"run\", \"--reload\"]"),
            false,
        ),
        (
            "dev-server",
            "Dockerfile",
            format!(
                "{GOOD}FROM python:3.12.8-slim-bookworm AS dev\nUSER 1000\nCMD [\"flask\", \"run\"]\n"
            ),
            false,
        ),
        ("dev-server", "Dockerfile", GOOD.to_string(), false),
        (
            "debug-mode",
            "Dockerfile",
            edit(
                "ENV PYTHONUNBUFFERED",
                "ENV PYTHONUNBUFFERED=1 FLASK_ENV=development",
            ),
            true,
        ),
        (
            "debug-mode",
            "Dockerfile",
            edit(
                "ENV PYTHONUNBUFFERED",
                "ENV PYTHONUNBUFFERED=1 FLASK_DEBUG=1",
            ),
            true,
        ),
        (
            "debug-mode",
            "Dockerfile",
            edit(
                "ENV PYTHONUNBUFFERED",
                "ENV PYTHONUNBUFFERED=1 FLASK_DEBUG=0",
            ),
            false,
        ),
        (
            "virtualenv",
            "Dockerfile",
            edit(
                "RUN pip",
                "RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt",
            ),
            true,
        ),
        (
            "virtualenv",
            "Dockerfile",
            edit("ENV PIP", "ENV VIRTUAL_ENV=/venv"),
            true,
        ),
        (
            "virtualenv",
            "Dockerfile",
            edit("RUN pip", "RUN uv venv /venv"),
            true,
        ),
        ("virtualenv", "Dockerfile", GOOD.to_string(), false),
        (
            "unpinned-pip",
            "Dockerfile",
            edit("RUN pip", "RUN pip install flask gunicorn==23.0.0"),
            true,
        ),
        (
            "unpinned-pip",
            "Dockerfile",
            edit("RUN pip", "RUN pip install 'flask>=3'"),
            true,
        ),
        (
            "unpinned-pip",
            "Dockerfile",
            edit(
                "RUN pip",
                "RUN pip install flask==3.1.0 ./dist/app.whl -e .",
            ),
            false,
        ),
        (
            "unpinned-pip",
            "Dockerfile",
            edit(
                "RUN pip",
                "RUN uv pip install --system --exclude-newer 2023-04-03T11:36:39Z -r requirements.txt",
            ),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d(
                "FROM python:3.12-slim AS build\nRUN pip install --prefix /install -r r.txt\nFROM python:3.12-slim\nCOPY --from=build /install /usr/local\n",
            ),
            false,
        ),
        (
            "apt-lists-not-removed",
            "Dockerfile",
            d(
                "FROM python:3.12-slim AS build\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM python:3.12-slim\nUSER 1\n",
            ),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install -r requirements.txt\n"),
            true,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install --no-cache-dir -r requirements.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d(
                "FROM python:3.12-slim\nRUN --mount=type=cache,target=/root/.cache pip install -r r.txt\n",
            ),
            false,
        ),
        ("pip-cache", "Dockerfile", GOOD.to_string(), false),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install --no-cache -r requirements.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN python -m pip install --no-ca -r requirements.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=0\nRUN pip install -r r.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nARG PIP_NO_CACHE_DIR=1\nFROM base\nRUN pip install -r r.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN PIP_NO_CACHE_DIR=1 pip install -r r.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN export PIP_NO_CACHE_DIR=1 && pip install -r r.txt\n"),
            false,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install -r r.txt\nENV PIP_NO_CACHE_DIR=1\n"),
            true,
        ),
        (
            "pip-cache",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install --no-compile -r r.txt\n"),
            true,
        ),
        (
            "python-unbuffered",
            "Dockerfile",
            edit("ENV PYTHONUNBUFFERED", "ENV LANG=C.UTF-8"),
            true,
        ),
        (
            "python-unbuffered",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install --no-cache-dir -r r.txt\nUSER 1\nCMD [\"supervisord\", \"-n\"]\n"),
            true,
        ),
        (
            "python-unbuffered",
            "Dockerfile",
            d("FROM python:3.12-slim\nENV PYTHONUNBUFFERED=1\nRUN pip install --no-cache-dir -r r.txt\nUSER 1\nCMD [\"supervisord\", \"-n\"]\n"),
            false,
        ),
        (
            "missing-healthcheck",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN pip install --no-cache-dir -r r.txt\nUSER 1\nCMD [\"supervisord\", \"-n\"]\n"),
            true,
        ),
        (
            "missing-healthcheck",
            "Dockerfile",
            d("FROM debian:bookworm-slim\nRUN apt-get install -y cron\nUSER 1\nCMD [\"cron\", \"-f\"]\n"),
            false,
        ),
        (
            "python-unbuffered",
            "Dockerfile",
            edit("ENV PYTHONUNBUFFERED", "ENV PYTHONUNBUFFERED=0"),
            true,
        ),
        (
            "python-unbuffered",
            "Dockerfile",
            d("FROM python:3.12-slim\nUSER 1000\nCMD [\"python\", \"-u\", \"worker.py\"]\n"),
            false,
        ),
        (
            "log-file",
            "Dockerfile",
            edit("", "ENV APP_LOG_FILE=/var/log/app/app.log"),
            true,
        ),
        (
            "log-file",
            "Dockerfile",
            edit("", "ENV APP_LOG_FILE=/dev/stdout"),
            false,
        ),
        (
            "log-file",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"gunicorn\", \"--access-logfile\", \"/var/log/access.log\", \"app:app\"]",
            ),
            true,
        ),
        (
            "log-file",
            "Dockerfile",
            edit("CMD", "CMD gunicorn app:app >> /var/log/app.log 2>&1"),
            true,
        ),
        (
            "log-file",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"gunicorn\", \"--access-logfile\", \"-\", \"--error-logfile=-\", \"app:app\"]",
            ),
            false,
        ),
        ("run-noop", "Dockerfile", edit("", "RUN cd /app"), true),
        ("run-noop", "Dockerfile", edit("", "RUN export FOO=1"), true),
        (
            "run-noop",
            "Dockerfile",
            edit("", "RUN export FOO=1 && echo $FOO > /x"),
            false,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim AS wheels\nCOPY . .\nRUN pip wheel -w /w -r requirements.txt\nFROM python:3.12-slim\nUSER 1\n"),
            true,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nRUN pip install poetry==1.8.5\nFROM base AS build\nCOPY . .\nRUN poetry install --no-root\n"),
            true,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nFROM base AS build\nCOPY . .\nRUN pip install .\n"),
            false,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d(
                "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n",
            ),
            true,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim\nCOPY . /app\nRUN pip install --no-cache-dir /app\n"),
            true,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim\nCOPY . /app\nRUN python -m compileall /app\n"),
            false,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim\nCOPY ./ ./\nRUN pip install --no-cache-dir .\n"),
            true,
        ),
        (
            "source-before-deps",
            "Dockerfile",
            d("FROM python:3.12-slim\nCOPY . .\nRUN poetry install --no-root\n"),
            true,
        ),
        ("source-before-deps", "Dockerfile", GOOD.to_string(), false),
        (
            "cache-bust-early",
            "Dockerfile",
            edit("WORKDIR /src", "ARG GIT_COMMIT"),
            true,
        ),
        (
            "cache-bust-early",
            "Dockerfile",
            edit("WORKDIR /src", "ADD https://example.com/x.tar.gz /tmp/"),
            true,
        ),
        (
            "cache-bust-early",
            "Dockerfile",
            edit("", "ARG GIT_COMMIT"),
            false,
        ),
        (
            "cd-in-run",
            "Dockerfile",
            edit("", "RUN cd /tmp && make install"),
            true,
        ),
        (
            "cd-in-run",
            "Dockerfile",
            edit("", "RUN make -C /tmp install"),
            false,
        ),
        (
            "sudo",
            "Dockerfile",
            edit("", "RUN sudo chown app /data"),
            true,
        ),
        ("sudo", "Dockerfile", GOOD.to_string(), false),
        (
            "pipefail",
            "Dockerfile",
            edit("", "RUN curl -fsSL https://example.com/x.tgz | tar xz"),
            true,
        ),
        (
            "pipefail",
            "Dockerfile",
            edit(
                "",
                "RUN set -o pipefail && curl -fsSL https://example.com/x.tgz | tar xz",
            ),
            false,
        ),
        (
            "pipefail",
            "Dockerfile",
            edit(
                "",
                "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -fsSL https://e.com/x.tgz | tar xz",
            ),
            false,
        ),
        ("root-user", "Dockerfile", edit("USER", ""), true),
        ("root-user", "Dockerfile", edit("USER", "USER root"), true),
        (
            "root-user",
            "Dockerfile",
            edit("USER", "ARG RUNAS=0\nUSER ${RUNAS}"),
            true,
        ),
        (
            "root-user",
            "Dockerfile",
            edit("USER", "USER app:app"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM gcr.io/distroless/python3-debian12:nonroot\nCOPY app.py /app/\n"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nUSER 1000\nFROM base\nCMD [\"python\"]\n"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM python:3.12-slim AS app\nUSER 1000\nFROM app AS dev-envs\nUSER root\n"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM python:3.12-slim AS dev\nCMD [\"python\"]\n"),
            true,
        ),
        (
            "dev-server",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nCMD [\"flask\", \"run\"]\nFROM base AS development\n"),
            true,
        ),
        (
            "dev-server",
            "Dockerfile",
            d("FROM python:3.12-slim AS base\nCMD [\"gunicorn\", \"app:app\"]\nFROM base AS dev-envs\nCMD [\"flask\", \"run\"]\n"),
            false,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            d("FROM python:3.12-slim AS app\nUSER 1000\nFROM app AS app_debug\nRUN apt-get install -y gcc\n"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM nginxinc/nginx-unprivileged:1.27-alpine\nCOPY default.conf /etc/nginx/conf.d/\n"),
            false,
        ),
        (
            "root-user",
            "Dockerfile",
            d("FROM nginx:1.27-alpine\nRUN apk add --no-cache python3 py3-pip\nCMD [\"gunicorn\", \"app:app\"]\n"),
            true,
        ),
        ("missing-expose", "Dockerfile", edit("EXPOSE", ""), true),
        (
            "missing-expose",
            "Dockerfile",
            d("FROM python:3.12-slim\nUSER 1000\nCMD [\"python\", \"worker.py\"]\n"),
            false,
        ),
        (
            "missing-volume",
            "Dockerfile",
            edit("", "RUN mkdir -p /data && chown 65532 /data"),
            true,
        ),
        (
            "missing-volume",
            "Dockerfile",
            edit("", "RUN mkdir -p /data\nVOLUME [\"/data\"]"),
            false,
        ),
        (
            "writable-app-dir",
            "Dockerfile",
            edit("", "RUN chown -R 65532 /app"),
            true,
        ),
        (
            "writable-app-dir",
            "Dockerfile",
            edit("", "RUN chmod -R 777 /srv"),
            true,
        ),
        (
            "writable-app-dir",
            "Dockerfile",
            edit("", "RUN chown 65532 /data"),
            false,
        ),
        (
            "database-in-image",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends postgresql && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "database-in-image",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends libpq5 postgresql-client && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            edit(
                "RUN pip",
                "RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends gcc && pip install --no-cache-dir x==1 && apt-get purge -y gcc && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            d("FROM python:3.12-alpine\nUSER 1000\nRUN apk add --no-cache --virtual .build-deps gcc musl-dev \\\n && pip install --no-cache-dir x==1 && apk del .build-deps\n"),
            false,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            d("FROM python:3.12-alpine\nUSER 1000\nRUN apk add --no-cache gcc\nRUN apk del gcc\n"),
            true,
        ),
        (
            "build-tools-in-final",
            "Dockerfile",
            d("FROM python:3.12-alpine\nUSER 1000\nRUN apk del gcc && apk add --no-cache gcc\n"),
            true,
        ),
        (
            "ssh-server",
            "Dockerfile",
            d("FROM python:3.12-slim\nRUN apt-get install -y openssh-server && apt-get purge -y openssh-server\n"),
            false,
        ),
        (
            "full-base-image",
            "Dockerfile",
            d("FROM python:3.12\nUSER 1000\n"),
            true,
        ),
        (
            "full-base-image",
            "Dockerfile",
            d("ARG PY=python:3.12-bookworm\nFROM ${PY}\nUSER 1000\n"),
            true,
        ),
        (
            "full-base-image",
            "Dockerfile",
            d("FROM python:3.12 AS build\nFROM python:3.12-slim\nUSER 1000\n"),
            false,
        ),
        (
            "missing-healthcheck",
            "Dockerfile",
            edit("HEALTHCHECK", ""),
            true,
        ),
        (
            "missing-healthcheck",
            "Dockerfile.dev",
            edit("HEALTHCHECK", ""),
            false,
        ),
        (
            "missing-healthcheck",
            "Dockerfile",
            edit("HEALTHCHECK", "HEALTHCHECK NONE"),
            false,
        ),
        (
            "shell-form-command",
            "Dockerfile",
            edit("CMD", "CMD gunicorn app:app"),
            true,
        ),
        (
            "shell-form-command",
            "Dockerfile",
            edit("CMD", "ENTRYPOINT /entrypoint.sh"),
            true,
        ),
        ("shell-form-command", "Dockerfile", GOOD.to_string(), false),
        (
            "shell-without-exec",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"sh\", \"-c\", \"gunicorn -b 0.0.0.0:$PORT app:app\"]",
            ),
            true,
        ),
        (
            "shell-without-exec",
            "Dockerfile",
            edit(
                "CMD",
                "CMD [\"sh\", \"-c\", \"exec gunicorn -b 0.0.0.0:$PORT app:app\"]",
            ),
            false,
        ),
        (
            "entrypoint-without-exec",
            "Dockerfile",
            edit(
                "CMD",
                "COPY <<EOF /usr/local/bin/start\n#!/bin/sh\npython manage.py migrate\ngunicorn app:app\nEOF\nENTRYPOINT [\"/usr/local/bin/start\"]",
            ),
            true,
        ),
        (
            "entrypoint-without-exec",
            "Dockerfile",
            edit(
                "CMD",
                "COPY <<EOF /usr/local/bin/start\n#!/bin/sh\npython manage.py migrate\nexec gunicorn app:app\nEOF\nENTRYPOINT [\"/usr/local/bin/start\"]",
            ),
            false,
        ),
        (
            "invalid-ignore",
            "Dockerfile",
            edit("", "# terrarium: ignore=mantainer\nMAINTAINER jane"),
            true,
        ),
        (
            "invalid-ignore",
            "Dockerfile",
            edit("", "# terrarium: ignore=maintainer\nMAINTAINER jane"),
            false,
        ),
        (
            "untagged-image",
            "Dockerfile",
            d("FROM python\nUSER 1000\n"),
            true,
        ),
        (
            "untagged-image",
            "Dockerfile",
            d(
                "FROM python@sha256:0000000000000000000000000000000000000000000000000000000000000000\nUSER 1000\n",
            ),
            false,
        ),
        (
            "untagged-image",
            "Dockerfile",
            d("FROM scratch\nCOPY x /x\n"),
            false,
        ),
        (
            "latest-tag",
            "Dockerfile",
            edit(
                "COPY --from",
                "COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/",
            ),
            true,
        ),
        (
            "untagged-image",
            "Dockerfile",
            edit("COPY --from", "COPY --from=ghcr.io/astral-sh/uv /uv /bin/"),
            true,
        ),
        (
            "latest-tag",
            "Dockerfile",
            edit(
                "COPY --from",
                "COPY --from=ghcr.io/astral-sh/uv:0.5.11 /uv /bin/",
            ),
            false,
        ),
        (
            "latest-tag",
            "Dockerfile",
            d("FROM python:latest\nUSER 1000\n"),
            true,
        ),
        (
            "latest-tag",
            "Dockerfile",
            d("ARG TAG=latest\nFROM registry.example.com:5000/python:${TAG}\nUSER 1000\n"),
            true,
        ),
        (
            "latest-tag",
            "Dockerfile",
            d("FROM python:slim\nUSER 1000\n"),
            true,
        ),
        (
            "latest-tag",
            "Dockerfile",
            d("FROM debian:bookworm-slim\nUSER 1000\n"),
            false,
        ),
        (
            "latest-tag",
            "Dockerfile",
            d("ARG PY\nFROM python:${PY}-slim\nUSER 1000\n"),
            false,
        ),
        (
            "compose-floating-image",
            "compose.yaml",
            edit_compose("postgres:17.2-bookworm", "postgres:alpine"),
            true,
        ),
        ("latest-tag", "Dockerfile", GOOD.to_string(), false),
        (
            "tls-bypass",
            "Dockerfile",
            edit(
                "RUN pip",
                "RUN pip install --trusted-host pypi.org -r requirements.txt",
            ),
            true,
        ),
        (
            "tls-bypass",
            "Dockerfile",
            edit("", "RUN curl -fsSLk https://example.com -o /x"),
            true,
        ),
        (
            "tls-bypass",
            "Dockerfile",
            edit("", "RUN apt-get install -y --allow-unauthenticated x"),
            true,
        ),
        (
            "tls-bypass",
            "Dockerfile",
            edit("", "RUN wget --no-check-certificate https://e.com/x"),
            true,
        ),
        (
            "tls-bypass",
            "Dockerfile",
            edit("", "ENV PYTHONHTTPSVERIFY=0"),
            true,
        ),
        (
            "tls-bypass",
            "Dockerfile",
            edit("", "RUN curl -fsSL https://example.com -o /x"),
            false,
        ),
        (
            "pipe-to-shell",
            "Dockerfile",
            edit(
                "",
                "RUN curl -sSL https://install.python-poetry.org | python3 -",
            ),
            true,
        ),
        (
            "pipe-to-shell",
            "Dockerfile",
            edit("", "RUN curl -sSL https://e.com/x.tgz | tar xz"),
            false,
        ),
        (
            "apt-update-alone",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update\nRUN apt-get install -y --no-install-recommends curl",
            ),
            true,
        ),
        (
            "apt-update-alone",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "apt-lists-not-removed",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends curl",
            ),
            true,
        ),
        (
            "apt-lists-not-removed",
            "Dockerfile",
            edit(
                "",
                "RUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y curl",
            ),
            false,
        ),
        (
            "apt-no-yes",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install curl && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "apt-no-yes",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get -qq install curl && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "apt-no-recommends",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*",
            ),
            true,
        ),
        (
            "apt-no-recommends",
            "Dockerfile",
            edit(
                "",
                "RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*",
            ),
            false,
        ),
        (
            "apt-not-apt-get",
            "Dockerfile",
            edit("", "RUN apt update && apt install -y curl"),
            true,
        ),
        ("apt-not-apt-get", "Dockerfile", GOOD.to_string(), false),
        (
            "apk-no-cache",
            "Dockerfile",
            d("FROM python:3.12-alpine\nRUN apk add curl\nUSER 1000\n"),
            true,
        ),
        (
            "apk-no-cache",
            "Dockerfile",
            d("FROM python:3.12-alpine\nRUN apk add --no-cache curl\nUSER 1000\n"),
            false,
        ),
        (
            "secret-in-env",
            "Dockerfile",
            edit("", "ENV SECRET_KEY=s3cr3t"),
            true,
        ),
        (
            "secret-in-env",
            "Dockerfile",
            edit("", "ARG GITHUB_TOKEN"),
            true,
        ),
        (
            "secret-in-env",
            "Dockerfile",
            edit(
                "",
                "ENV DJANGO_SECRET_KEY_FILE=/run/secrets/key PASSWORD_MIN_LENGTH=12",
            ),
            false,
        ),
        (
            "secret-file-copied",
            "Dockerfile",
            edit("", "COPY .env /app/.env"),
            true,
        ),
        (
            "secret-file-copied",
            "Dockerfile",
            edit("", "COPY certs/server.key /etc/ssl/"),
            true,
        ),
        (
            "secret-file-copied",
            "Dockerfile",
            edit("", "COPY .env.example /app/"),
            false,
        ),
        (
            "missing-dockerignore",
            "no-such-dir/Dockerfile",
            GOOD.to_string(),
            true,
        ),
        (
            "missing-dockerignore",
            "no-such-dir/Dockerfile",
            d("FROM python:3.12-slim\nCOPY app.py /app/\n"),
            false,
        ),
        (
            "relative-workdir",
            "Dockerfile",
            edit("WORKDIR /app", "WORKDIR app"),
            true,
        ),
        (
            "relative-workdir",
            "Dockerfile",
            edit("WORKDIR /app", "WORKDIR $HOME/app"),
            false,
        ),
        (
            "repeated-instruction",
            "Dockerfile",
            edit("", "CMD [\"flask\", \"run\"]"),
            true,
        ),
        (
            "repeated-instruction",
            "Dockerfile",
            GOOD.to_string(),
            false,
        ),
        (
            "invalid-expose",
            "Dockerfile",
            edit("EXPOSE", "ENV PORT=80000\nEXPOSE $PORT"),
            true,
        ),
        (
            "invalid-expose",
            "Dockerfile",
            edit("EXPOSE", "ARG PORT=8000\nEXPOSE ${PORT}/tcp"),
            false,
        ),
        (
            "invalid-expose",
            "Dockerfile",
            edit("EXPOSE", "EXPOSE 8000:8000"),
            true,
        ),
        (
            "invalid-expose",
            "Dockerfile",
            edit("EXPOSE", "EXPOSE 70000"),
            true,
        ),
        (
            "invalid-expose",
            "Dockerfile",
            edit("EXPOSE", "EXPOSE 8000/tcp 9000-9010/udp $PORT"),
            false,
        ),
        (
            "unknown-stage",
            "Dockerfile",
            edit("COPY --from", "COPY --from=builder /install /usr/local"),
            true,
        ),
        (
            "unknown-stage",
            "Dockerfile",
            edit("COPY --from", "COPY --from=0 /install /usr/local"),
            false,
        ),
        (
            "unknown-stage",
            "Dockerfile",
            edit(
                "COPY --from",
                "COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/",
            ),
            false,
        ),
        (
            "duplicate-stage-name",
            "Dockerfile",
            d("FROM python:3.12-slim AS a\nFROM python:3.12-slim AS a\nUSER 1\n"),
            true,
        ),
        (
            "duplicate-stage-name",
            "Dockerfile",
            GOOD.to_string(),
            false,
        ),
        (
            "maintainer",
            "Dockerfile",
            edit("", "MAINTAINER jane@example.com"),
            true,
        ),
        ("maintainer", "Dockerfile", GOOD.to_string(), false),
        (
            "add-instead-of-copy",
            "Dockerfile",
            edit("", "ADD app.py /app/"),
            true,
        ),
        (
            "add-instead-of-copy",
            "Dockerfile",
            edit("", "ADD vendor.tar.gz /opt/"),
            false,
        ),
        (
            "host-path",
            "Dockerfile",
            edit("", "COPY /home/alice/app.py /app/"),
            true,
        ),
        (
            "host-path",
            "Dockerfile",
            edit("", "COPY app.py /app/"),
            false,
        ),
        ("untrusted-registry", "Dockerfile", GOOD.to_string(), false),
        (
            "compose-root-user",
            "compose.yaml",
            edit_compose("    build: .\n", "    build: .\n    user: root\n"),
            true,
        ),
        (
            "compose-root-user",
            "compose.yaml",
            edit_compose("    build: .\n", "    build: .\n    user: \"0:0\"\n"),
            true,
        ),
        (
            "compose-root-user",
            "compose.yaml",
            edit_compose("    build: .\n", "    build: .\n    user: \"1000:1000\"\n"),
            false,
        ),
        (
            "compose-privileged",
            "compose.yaml",
            edit_compose("    build: .\n", "    build: .\n    privileged: true\n"),
            true,
        ),
        (
            "compose-privileged",
            "compose.yaml",
            edit_compose("    build: .\n", "    build: .\n    cap_add: [SYS_ADMIN]\n"),
            true,
        ),
        (
            "compose-privileged",
            "compose.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    privileged: false\n    cap_add: [NET_BIND_SERVICE]\n",
            ),
            false,
        ),
        (
            "docker-socket",
            "compose.yaml",
            edit_compose(
                "      - pgdata:/var/lib/postgresql/data\n",
                "      - pgdata:/var/lib/postgresql/data\n      - /var/run/docker.sock:/var/run/docker.sock\n",
            ),
            true,
        ),
        (
            "docker-socket",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-dev-server",
            "compose.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    command: flask run --host 0.0.0.0\n",
            ),
            true,
        ),
        (
            "compose-dev-server",
            "compose.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    command: [\"python\", \"manage.py\", \"runserver\", \"0.0.0.0:8000\"]\n",
            ),
            true,
        ),
        (
            "compose-dev-server",
            "compose.yaml",
            edit_compose(
                "      DATABASE_URL",
                "      FLASK_DEBUG: \"1\"\n      DATABASE_URL",
            ),
            true,
        ),
        (
            "compose-dev-server",
            "compose.override.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    command: flask run --reload\n",
            ),
            false,
        ),
        (
            "compose-public-port",
            "compose.yaml",
            edit_compose(
                "    restart: unless-stopped\n    volumes",
                "    restart: unless-stopped\n    ports: [\"5432:5432\"]\n    volumes",
            ),
            true,
        ),
        (
            "compose-public-port",
            "compose.yaml",
            edit_compose(
                "    restart: unless-stopped\n    volumes",
                "    restart: unless-stopped\n    ports: [\"0.0.0.0:5432:5432\"]\n    volumes",
            ),
            true,
        ),
        (
            "compose-public-port",
            "compose.yaml",
            edit_compose(
                "    restart: unless-stopped\n    volumes",
                "    restart: unless-stopped\n    ports: [\"127.0.0.1:5432:5432\"]\n    volumes",
            ),
            false,
        ),
        (
            "compose-public-port",
            "compose.yaml",
            edit_compose("\"127.0.0.1:8000:8000\"", "\"8000:8000\""),
            false,
        ),
        (
            "compose-stateful-no-volume",
            "compose.yaml",
            d("services:\n  cache:\n    image: redis:7.4\n"),
            true,
        ),
        (
            "compose-stateful-no-volume",
            "compose.yaml",
            edit_compose(
                "    volumes:\n      - pgdata:/var/lib/postgresql/data\n",
                "",
            ),
            true,
        ),
        (
            "compose-stateful-no-volume",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-missing-healthcheck",
            "compose.yaml",
            edit_compose(
                "    healthcheck:\n      test: [\"CMD\", \"python\", \"-c\", \"print(1)\"]\n",
                "",
            ),
            true,
        ),
        (
            "compose-missing-healthcheck",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            // A one-off job that another service waits to complete needs no health check.
            "compose-missing-healthcheck",
            "compose.yaml",
            "services:\n  migrate:\n    build: .\n    command: [\"python\", \"-m\", \"app.migrate\"]\n    restart: \"no\"\n  app:\n    build: .\n    restart: unless-stopped\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n".to_string(),
            false,
        ),
        (
            "compose-literal-secret",
            "compose.yaml",
            edit_compose("${SECRET_KEY:?set SECRET_KEY}", "hunter2"),
            true,
        ),
        (
            "compose-literal-secret",
            "compose.yaml",
            d(
                "services:\n  db:\n    image: postgres:17\n    environment:\n      - POSTGRES_PASSWORD=postgres\n",
            ),
            true,
        ),
        (
            "compose-literal-secret",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-floating-image",
            "compose.yaml",
            edit_compose("postgres:17.2-bookworm", "postgres"),
            true,
        ),
        (
            "compose-floating-image",
            "compose.yaml",
            edit_compose("postgres:17.2-bookworm", "postgres:latest"),
            true,
        ),
        (
            "compose-floating-image",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-config-mount",
            "compose.yaml",
            edit_compose(
                "      - pgdata:/var/lib/postgresql/data\n",
                "      - ./postgresql.conf:/etc/postgresql/postgresql.conf:ro\n      - pgdata:/var/lib/postgresql/data\n",
            ),
            true,
        ),
        (
            "compose-config-mount",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-no-restart",
            "compose.yaml",
            edit_compose("    restart: unless-stopped\n", ""),
            true,
        ),
        (
            "compose-no-restart",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-no-limits",
            "compose.yaml",
            edit_compose("    mem_limit: 1g\n", ""),
            true,
        ),
        (
            "compose-no-limits",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-host-path",
            "compose.yaml",
            edit_compose("      - pgdata:", "      - /srv/pg:"),
            true,
        ),
        (
            "compose-host-path",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-ssh",
            "compose.yaml",
            edit_compose("\"127.0.0.1:8000:8000\"", "\"127.0.0.1:2222:22\""),
            true,
        ),
        (
            "compose-ssh",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        (
            "compose-process-manager",
            "compose.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    command: sh -c \"celery -A app worker & gunicorn app:app\"\n",
            ),
            true,
        ),
        (
            "compose-process-manager",
            "compose.yaml",
            edit_compose(
                "    build: .\n",
                "    build: .\n    command: supervisord -n\n",
            ),
            true,
        ),
        (
            "compose-process-manager",
            "compose.yaml",
            GOOD_COMPOSE.to_string(),
            false,
        ),
        ("k8s-root", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-root",
            K8S,
            k8s("        runAsNonRoot: true\n        runAsUser: 65532\n", ""),
            true,
        ),
        (
            "k8s-root",
            K8S,
            k8s("runAsUser: 65532", "runAsUser: 0"),
            true,
        ),
        ("k8s-privileged", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-privileged",
            K8S,
            k8s("allowPrivilegeEscalation: false", "privileged: true"),
            true,
        ),
        (
            "k8s-privileged",
            K8S,
            k8s("      volumes:\n", "      hostNetwork: true\n      volumes:\n"),
            true,
        ),
        ("k8s-no-probes", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-no-probes",
            K8S,
            k8s("        readinessProbe:\n          httpGet:\n            path: /health\n            port: 8000\n", ""),
            true,
        ),
        ("k8s-no-limits", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-no-limits",
            K8S,
            k8s("        resources:\n          limits:\n            memory: 512Mi\n", ""),
            true,
        ),
        ("k8s-floating-image", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-floating-image",
            K8S,
            k8s("web:1.4.2", "web:latest"),
            true,
        ),
        (
            "k8s-floating-image",
            K8S,
            k8s("web:1.4.2", "web"),
            true,
        ),
        ("k8s-host-path", K8S, GOOD_K8S.to_string(), false),
        (
            "k8s-host-path",
            K8S,
            k8s("emptyDir: {}", "hostPath:\n          path: /srv/data"),
            true,
        ),
    ]
}

#[test]
fn every_rule_case() {
    let mut failures = Vec::new();
    for (rule, name, src, expected) in cases() {
        let findings = lint(name, &src);
        if has(&findings, rule) != expected {
            let got: Vec<_> = findings
                .iter()
                .map(|f| format!("{}@{}", f.rule, f.location.line))
                .collect();
            failures.push(format!(
                "{rule} on {name} expected {expected}, got {got:?}\n{src}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

#[test]
fn every_rule_has_positive_and_negative_cases() {
    let cases = cases();
    for rule in super::all() {
        let pos = cases.iter().any(|(r, _, _, e)| *r == rule.id && *e);
        let neg = cases.iter().any(|(r, _, _, e)| *r == rule.id && !*e);
        // Covered by their own tests below: they need settings or several files.
        if matches!(
            rule.id,
            "untrusted-registry" | "duplicated-build" | "dockerignore-incomplete"
        ) {
            continue;
        }
        assert!(
            pos && neg,
            "rule {} needs a positive and a negative case",
            rule.id
        );
    }
}

#[test]
fn untrusted_registry_only_with_an_allow_list() {
    let config = Config {
        trusted_registries: vec!["registry.example.com".into()],
        ..Config::default()
    };
    let findings = lint_with("Dockerfile", GOOD, &config);
    assert!(has(&findings, "untrusted-registry"));
    let ok = GOOD.replace("FROM python:", "FROM registry.example.com/python:");
    assert!(!has(
        &lint_with("Dockerfile", &ok, &config),
        "untrusted-registry"
    ));
    let compose = lint_with("compose.yaml", GOOD_COMPOSE, &config);
    assert!(has(&compose, "untrusted-registry"));
    assert!(!has(&lint("Dockerfile", GOOD), "untrusted-registry"));
}

#[test]
fn good_files_are_clean() {
    let findings = lint("Dockerfile", GOOD);
    let unexpected: Vec<_> = findings
        .iter()
        .filter(|f| f.rule != "missing-dockerignore")
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(lint("compose.yaml", GOOD_COMPOSE).is_empty());
}

#[test]
fn settings_disable_and_override() {
    let src = edit("USER", "");
    let config = Config {
        disable: vec!["root-user".into()],
        ..Config::default()
    };
    assert!(!has(&lint_with("Dockerfile", &src, &config), "root-user"));
    let mut config = Config::default();
    config
        .severity
        .insert("root-user".into(), crate::Severity::Info);
    let f = lint_with("Dockerfile", &src, &config);
    assert_eq!(
        f.iter().find(|f| f.rule == "root-user").map(|f| f.severity),
        Some(crate::Severity::Info)
    );
}

#[test]
fn inline_ignores() {
    let ignored = edit(
        "",
        "# terrarium: ignore=maintainer legacy label tooling\nMAINTAINER jane",
    );
    assert!(!has(&lint("Dockerfile", &ignored), "maintainer"));
    let file_wide = format!("# terrarium: ignore-file=root-user\n{}", edit("USER", ""));
    assert!(!has(&lint("Dockerfile", &file_wide), "root-user"));
    let other = edit("", "# terrarium: ignore=sudo\nMAINTAINER jane");
    assert!(has(&lint("Dockerfile", &other), "maintainer"));
    let compose = edit_compose(
        "  db:\n",
        "  # terrarium: ignore=compose-floating-image pinned by digest elsewhere\n  db:\n",
    )
    .replace("postgres:17.2-bookworm", "postgres");
    assert!(!has(
        &lint("compose.yaml", &compose),
        "compose-floating-image"
    ));
}

#[test]
fn findings_carry_lesson_position_and_fix() {
    let src = edit("CMD", "CMD [\"flask\", \"run\", \"--host=0.0.0.0\"]");
    let f = lint("Dockerfile", &src)
        .into_iter()
        .find(|f| f.rule == "dev-server")
        .expect("dev-server");
    assert_eq!(f.lesson.map(|l| l.to_string()).as_deref(), Some("L02"));
    assert_eq!(f.location.line, 16);
    assert_eq!(f.location.column, 6);
    assert!(!f.fix.is_empty());
}

/// Rules that read files of the build context next to the Dockerfile.
#[test]
fn rules_read_the_build_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    let lint_here = |src: &str| {
        let path = dir.path().join("Dockerfile");
        lint_source(&path, src, FileKind::Dockerfile, &Config::default())
    };
    write(".dockerignore", ".git\n.env\n");
    write(
        "entrypoint.sh",
        "#!/bin/sh\nset -e\npython manage.py migrate\ngunicorn app:app\n",
    );
    write(
        "good-entrypoint.sh",
        "#!/bin/sh\nset -e\npython manage.py migrate\nexec \"$@\"\n",
    );
    write(
        "app.py",
        "from flask import Flask\napp = Flask(__name__)\nif __name__ == '__main__':\n    app.run(host='0.0.0.0')\n",
    );
    write("worker.py", "import time\nwhile True:\n    time.sleep(1)\n");

    let bad = edit(
        "CMD",
        "COPY entrypoint.sh /entrypoint.sh\nENTRYPOINT [\"/entrypoint.sh\"]",
    );
    assert!(has(&lint_here(&bad), "entrypoint-without-exec"));
    let good = edit(
        "CMD",
        "COPY good-entrypoint.sh /entrypoint.sh\nENTRYPOINT [\"/entrypoint.sh\"]",
    );
    assert!(!has(&lint_here(&good), "entrypoint-without-exec"));
    let heredoc = edit(
        "CMD",
        "COPY <<EOF /usr/local/bin/start\n#!/bin/sh\ngunicorn app:app\nEOF\nENTRYPOINT [\"start\"]",
    );
    assert!(
        !has(&lint_here(&heredoc), "entrypoint-without-exec"),
        "relative program: not resolved against WORKDIR /app"
    );
    let heredoc_abs = edit(
        "CMD",
        "COPY <<EOF /usr/local/bin/start\n#!/bin/sh\ngunicorn app:app\nEOF\nENTRYPOINT [\"/usr/local/bin/start\"]",
    );
    assert!(has(&lint_here(&heredoc_abs), "entrypoint-without-exec"));
    let unknown = edit("CMD", "ENTRYPOINT [\"/missing.sh\"]");
    assert!(!has(&lint_here(&unknown), "entrypoint-without-exec"));

    // `COPY . .` under WORKDIR /app puts app.py at /app/app.py.
    let app_run = edit("CMD", "CMD [\"python\", \"app.py\"]");
    let findings = lint_here(&app_run);
    let dev = findings
        .iter()
        .find(|f| f.rule == "dev-server")
        .expect("app.run() found");
    assert!(dev.message.contains("app.run()"), "{}", dev.message);
    let worker = edit("CMD", "CMD [\"python\", \"worker.py\"]");
    assert!(!has(&lint_here(&worker), "dev-server"));
    // A FlaskGroup script's `run` is `flask run`, whatever the script is called.
    write(
        "cli.py",
        "from flask.cli import FlaskGroup\nfrom app import app\ncli = FlaskGroup(app)\ncli()\n",
    );
    let group = edit("CMD", "CMD [\"python\", \"cli.py\", \"run\"]");
    assert!(has(&lint_here(&group), "dev-server"));
    let other = edit("CMD", "CMD [\"python\", \"cli.py\", \"seed\"]");
    assert!(!has(&lint_here(&other), "dev-server"));
    // A wrapper script that ends in `flask run`, run directly or through sh.
    write(
        "serve.sh",
        "#!/bin/sh\nset -e\nexec flask run --host 0.0.0.0\n",
    );
    for cmd in ["CMD [\"./serve.sh\"]", "CMD [\"sh\", \"serve.sh\"]"] {
        let findings = lint_here(&edit("CMD", cmd));
        let dev = findings
            .iter()
            .find(|f| f.rule == "dev-server")
            .unwrap_or_else(|| panic!("{cmd}: {findings:#?}"));
        assert!(
            dev.message.contains("`flask run` on line 3 of the script"),
            "{}",
            dev.message
        );
    }
    write(
        "hand-over.sh",
        "#!/bin/sh\n[ -n \"$DEV\" ] && exec flask run\nexec \"$@\"\n",
    );
    let hand_over = edit(
        "CMD",
        "ENTRYPOINT [\"./hand-over.sh\"]\nCMD [\"gunicorn\", \"app:app\"]",
    );
    assert!(!has(&lint_here(&hand_over), "dev-server"));
    // ENTRYPOINT and CMD together run `python3 app.py`.
    let joined = edit("CMD", "ENTRYPOINT [\"python3\", \"-u\"]\nCMD [\"app.py\"]");
    let findings = lint_here(&joined);
    let dev = findings
        .iter()
        .find(|f| f.rule == "dev-server")
        .expect("ENTRYPOINT + CMD joined");
    assert!(
        dev.message.starts_with("`python3 -u app.py`"),
        "{}",
        dev.message
    );
    let shell_entry = edit("CMD", "ENTRYPOINT python3\nCMD [\"app.py\"]");
    assert!(
        !has(&lint_here(&shell_entry), "dev-server"),
        "a shell-form ENTRYPOINT ignores CMD"
    );
    let joined_worker = edit("CMD", "ENTRYPOINT [\"python3\"]\nCMD [\"worker.py\"]");
    assert!(!has(&lint_here(&joined_worker), "dev-server"));

    assert!(!has(&lint_here(GOOD), "dockerignore-incomplete"));
    write(".dockerignore", "__pycache__/\n.git\n");
    let findings = lint_here(GOOD);
    let incomplete = findings
        .iter()
        .find(|f| f.rule == "dockerignore-incomplete")
        .expect("incomplete");
    assert!(
        incomplete.message.contains(".env") && !incomplete.message.contains(".git"),
        "{}",
        incomplete.message
    );
    write("Dockerfile.dockerignore", "*\n!app.py\n");
    assert!(
        !has(&lint_here(GOOD), "dockerignore-incomplete"),
        "a Dockerfile-specific ignore file wins"
    );
}

#[test]
fn caches_without_volumes_are_info() {
    let findings = lint(
        "compose.yaml",
        "services:\n  cache:\n    image: redis:7.4\n  db:\n    image: mariadb:11\n",
    );
    let severity = |name: &str| {
        findings
            .iter()
            .find(|f| f.rule == "compose-stateful-no-volume" && f.message.contains(name))
            .map(|f| f.severity)
    };
    assert_eq!(severity("cache"), Some(crate::Severity::Info));
    assert_eq!(severity("db"), Some(crate::Severity::Warning));
}

#[test]
fn invalid_ignore_names_the_closest_rule() {
    let src = edit(
        "",
        "# terrarium: ignore=roo-user,maintainer\nMAINTAINER jane",
    );
    let findings = lint("Dockerfile", &src);
    let bad = findings
        .iter()
        .find(|f| f.rule == "invalid-ignore")
        .expect("invalid-ignore");
    assert!(
        bad.message.contains("did you mean `root-user`"),
        "{}",
        bad.message
    );
    assert!(
        !has(&findings, "maintainer"),
        "the valid part of the comment still applies"
    );
    let ok = edit("", "# terrarium: ignore=all\nMAINTAINER jane");
    assert!(!has(&lint("Dockerfile", &ok), "invalid-ignore"));
    let yaml = edit_compose("  db:\n", "  # terrarium: ignore=compose-nope\n  db:\n");
    assert!(has(&lint("compose.yaml", &yaml), "invalid-ignore"));
}

#[test]
fn duplicated_build_between_dockerfile_and_dev() {
    let dir = tempfile::tempdir().expect("tempdir");
    let steps = "RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*\nCOPY requirements.txt .\nRUN pip install --no-cache-dir --require-hashes -r requirements.txt\n";
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM python:3.12-slim\n{steps}USER 1000\n"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("Dockerfile.dev"),
        format!("FROM python:3.12-slim\n{steps}USER 1000\nCMD [\"flask\", \"run\"]\n"),
    )
    .expect("write");
    let outcome = crate::lint_paths(&[dir.path().to_path_buf()], &Config::default()).expect("lint");
    let dup: Vec<_> = outcome
        .findings
        .iter()
        .filter(|f| f.rule == "duplicated-build")
        .collect();
    assert_eq!(dup.len(), 2, "{:#?}", outcome.findings);
    assert!(dup.iter().all(|f| f.file.ends_with("Dockerfile.dev")));
    assert_eq!(dup[0].location.line, 2);

    // One shared step is not duplicated build logic.
    std::fs::write(dir.path().join("Dockerfile.dev"), "FROM python:3.12-slim\nRUN pip install --no-cache-dir --require-hashes -r requirements.txt\nUSER 1000\n").expect("write");
    let outcome = crate::lint_paths(&[dir.path().to_path_buf()], &Config::default()).expect("lint");
    assert!(
        !outcome
            .findings
            .iter()
            .any(|f| f.rule == "duplicated-build")
    );
}

#[test]
fn the_production_stage_is_the_last_one_that_is_not_a_dev_target() {
    let stage_of = |src: &str| {
        let file = crate::dockerfile::parse(src);
        let config = Config::default();
        let cx = super::DockerfileContext::new(&file, Path::new("Dockerfile"), &config);
        (
            cx.production_stage().and_then(|s| s.name.clone()),
            cx.dev_target,
        )
    };
    assert_eq!(
        stage_of("FROM a:1 AS build\nFROM b:1 AS app\nFROM app AS dev-envs\n"),
        (Some("app".into()), false)
    );
    assert_eq!(
        stage_of("FROM a:1 AS app\nFROM app AS development\nFROM app AS debug\n"),
        (Some("app".into()), false)
    );
    assert_eq!(
        stage_of("FROM a:1 AS dev\nFROM a:1 AS test\n"),
        (Some("test".into()), false)
    );
    assert_eq!(
        stage_of("FROM a:1 AS dev\nFROM dev AS devcontainer\n"),
        (Some("devcontainer".into()), true)
    );
    assert!(super::is_dev_stage("dev-envs"));
    assert!(super::is_dev_stage("app_debug"));
    assert!(!super::is_dev_stage("devops"));
}

#[test]
fn a_stock_nginx_proxy_image_is_root_at_info() {
    let severity = |src: &str| {
        lint("Dockerfile", src)
            .into_iter()
            .find(|f| f.rule == "root-user")
            .map(|f| (f.severity, f.message))
    };
    let proxy =
        "FROM docker.io/library/nginx:1.27.3-alpine\nCOPY default.conf /etc/nginx/conf.d/\n";
    let (level, message) = severity(proxy).expect("reported");
    assert_eq!(level, crate::Severity::Info);
    assert!(message.contains("by design"), "{message}");
    let started = format!("{proxy}CMD [\"nginx\", \"-g\", \"daemon off;\"]\n");
    assert_eq!(severity(&started).map(|s| s.0), Some(crate::Severity::Info));
    let other = format!("{proxy}CMD [\"/srv/app\"]\n");
    assert_eq!(severity(&other).map(|s| s.0), Some(crate::Severity::Error));
    let root = format!("{proxy}USER root\n");
    assert_eq!(severity(&root).map(|s| s.0), Some(crate::Severity::Error));
    let not_official = "FROM example/nginx:1.27\n";
    assert_eq!(
        severity(not_official).map(|s| s.0),
        Some(crate::Severity::Error)
    );
}

#[test]
fn a_plain_file_beside_a_production_one_is_for_development() {
    let dir = tempfile::tempdir().expect("tempdir");
    let touch = |name: &str| std::fs::write(dir.path().join(name), "").expect("write");
    let plain = dir.path().join("docker-compose.yml");
    touch("docker-compose.yml");
    assert!(!super::is_dev_file(&plain));
    touch("compose.production.yaml");
    assert!(super::is_dev_file(&plain));
    assert!(!super::is_dev_file(
        &dir.path().join("compose.production.yaml")
    ));
    assert!(
        !super::is_dev_file(&dir.path().join("compose.staging.yaml")),
        "only the plain file becomes the dev one"
    );
    let dockerfile = dir.path().join("Dockerfile");
    assert!(
        !super::is_dev_file(&dockerfile),
        "a compose file is not its variant"
    );
    touch("Dockerfile.prod");
    assert!(super::is_dev_file(&dockerfile));
    let src = "FROM python:3.12-slim\nUSER 1000\nCMD [\"flask\", \"run\"]\n";
    let findings = lint_source(&dockerfile, src, FileKind::Dockerfile, &Config::default());
    assert!(!has(&findings, "dev-server"), "{findings:#?}");
}

#[test]
fn a_tool_removed_in_a_later_layer_still_has_its_bytes_in_the_image() {
    let src = "FROM python:3.12-slim\nUSER 1000\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends gcc\nRUN pip install --no-cache-dir x==1\nRUN apt-get purge -y gcc\n";
    let findings = lint("Dockerfile", src);
    let tool = findings
        .iter()
        .find(|f| f.rule == "build-tools-in-final")
        .expect("reported");
    assert_eq!(
        tool.message,
        "`gcc` is removed in line 6, but its bytes stay in the layer of line 3"
    );
    assert_eq!(tool.location.line, 4);
}
