#!/usr/bin/env python3
"""Generate a deterministic corpus of realistic Dockerfiles and Compose files for the lint
benchmark: Flask/Django/FastAPI services, single- and multi-stage, good and bad, mixed with
the hand-written fixtures of crates/terrarium-lint/tests/fixtures."""

import argparse
import pathlib
import random

PYTHONS = ["3.10", "3.11", "3.12", "3.12.8", "3.13"]
BASES = ["python:{v}-slim", "python:{v}-slim-bookworm", "python:{v}", "python:latest", "python:{v}-alpine", "python"]
APPS = [
    ("gunicorn", '["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "app:app"]'),
    ("uvicorn", '["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]'),
    ("django", '["gunicorn", "mysite.wsgi:application", "--bind", "0.0.0.0:8000"]'),
    ("flask-dev", "flask run --host=0.0.0.0"),
    ("runserver", '["python", "manage.py", "runserver", "0.0.0.0:8000"]'),
    ("reload", '["uvicorn", "main:app", "--host", "0.0.0.0", "--reload"]'),
    ("supervisor", '["supervisord", "-n"]'),
    ("shell", "gunicorn app:app --bind 0.0.0.0:8000 --access-logfile /var/log/access.log"),
    ("sh-c", '["sh", "-c", "python manage.py migrate && gunicorn mysite.wsgi -b 0.0.0.0:$PORT"]'),
]
APT = [
    "RUN apt-get update \\\n && apt-get install -y --no-install-recommends libpq5 curl \\\n && rm -rf /var/lib/apt/lists/*",
    "RUN apt-get update\nRUN apt-get install -y gcc libpq-dev git",
    "RUN apt-get update && apt-get install -y build-essential openssh-server supervisor nginx",
    "RUN apk add --no-cache libffi",
    "RUN <<EOF\nset -eux\napt-get update\napt-get install -y --no-install-recommends libpq5\nrm -rf /var/lib/apt/lists/*\nEOF",
    "",
]
DEPS = [
    ("COPY requirements.txt .", "RUN pip install --no-cache-dir --require-hashes -r requirements.txt"),
    ("COPY requirements.txt .", "RUN pip install -r requirements.txt"),
    ("COPY pyproject.toml poetry.lock ./", "RUN pip install --no-cache-dir poetry==1.8.5 \\\n && poetry config virtualenvs.create false \\\n && poetry install --no-root --only main"),
    ("COPY pyproject.toml uv.lock ./", "RUN python -m pip install --no-cache-dir uv==0.5.11 \\\n && uv export --frozen --no-dev -o /tmp/r.txt \\\n && uv pip install --system --require-hashes -r /tmp/r.txt"),
    ("", "RUN pip install flask gunicorn 'django>=4' fastapi uvicorn[standard]"),
    ("COPY requirements.txt .", "RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt"),
    ("COPY requirements.txt .", "RUN pip install --trusted-host pypi.org -r requirements.txt"),
]
EXTRAS = [
    "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
    "ENV FLASK_ENV=development FLASK_DEBUG=1",
    "ENV SECRET_KEY=change-me DATABASE_URL=postgres://app@db/app",
    "ARG GIT_COMMIT\nLABEL org.opencontainers.image.revision=$GIT_COMMIT",
    "RUN curl -sSL https://install.example.com | sh",
    "MAINTAINER someone@example.com",
    "RUN cd /app && python manage.py collectstatic --noinput",
    "COPY .env /app/.env",
    "RUN mkdir -p /data && chown -R 1000 /app",
    "ENV PATH=\"/venv/bin:$PATH\"",
]


def dockerfile(rng: random.Random) -> str:
    version = rng.choice(PYTHONS)
    base = rng.choice(BASES).format(v=version)
    multi = rng.random() < 0.35
    lines = []
    if rng.random() < 0.1:
        lines.append("# syntax=docker/dockerfile:1")
    if multi:
        lines += [f"FROM {base} AS build", "WORKDIR /src"]
        copy, install = rng.choice(DEPS[:4])
        lines += [copy, install.replace("--system", "--prefix /install").replace("-r requirements.txt", "--prefix /install -r requirements.txt", 1) if "uv" not in install else install, "COPY . .", ""]
        lines += [f"FROM {rng.choice(BASES[:2]).format(v=version)}"]
    else:
        lines.append(f"FROM {base}")
    for extra in rng.sample(EXTRAS, rng.randint(0, 3)):
        lines.append(extra)
    apt = rng.choice(APT)
    if apt:
        lines.append(apt)
    lines.append("WORKDIR /app")
    if multi:
        lines.append("COPY --from=build /install /usr/local")
        lines.append("COPY . .")
    else:
        copy, install = rng.choice(DEPS)
        if rng.random() < 0.3:
            lines += ["COPY . .", install]
        else:
            lines += [line for line in (copy, install, "COPY . .") if line]
    if rng.random() < 0.6:
        lines.append("RUN useradd --system --uid 65532 app")
        lines.append(rng.choice(["USER 65532:65532", "USER app", "USER root"]))
    if rng.random() < 0.7:
        lines.append(rng.choice(["EXPOSE 8000", "EXPOSE 8000 22", "EXPOSE 5000"]))
    if rng.random() < 0.5:
        lines.append('HEALTHCHECK --interval=10s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:8000/health\')"]')
    _, cmd = rng.choice(APPS)
    lines.append(f"CMD {cmd}")
    return "\n".join(lines) + "\n"


def compose(rng: random.Random) -> str:
    out = ["services:"]
    out += ["  app:", "    build: ."]
    out.append(rng.choice(['    ports: ["127.0.0.1:8000:8000"]', '    ports: ["8000:8000"]', "    ports:\n      - target: 8000\n        published: 8000\n        host_ip: 127.0.0.1"]))
    if rng.random() < 0.6:
        out.append("    restart: unless-stopped")
    if rng.random() < 0.5:
        out.append('    healthcheck:\n      test: ["CMD", "python", "-c", "print(1)"]\n      interval: 10s')
    out.append("    environment:")
    out.append(rng.choice(["      SECRET_KEY: ${SECRET_KEY:?set it}", "      SECRET_KEY: hunter2", "      DEBUG: \"0\""]))
    out.append(rng.choice(["      DATABASE_URL: ${DATABASE_URL:-postgresql://app@db/app}", "      FLASK_DEBUG: \"1\""]))
    if rng.random() < 0.3:
        out.append(rng.choice(["    command: flask run --host 0.0.0.0", "    user: root", "    privileged: true", "    command: sh -c \"celery worker & gunicorn app:app\""]))
    if rng.random() < 0.7:
        out += ["  db:", f"    image: {rng.choice(['postgres:17.2', 'postgres', 'postgres:latest', 'mysql:8.4'])}"]
        out.append(rng.choice(['    ports: ["5432:5432"]', '    ports: ["127.0.0.1:5432:5432"]', "    expose: [\"5432\"]"]))
        if rng.random() < 0.6:
            out.append("    volumes:\n      - dbdata:/var/lib/postgresql/data")
        out.append(rng.choice(["    environment:\n      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-app}", "    environment:\n      - POSTGRES_PASSWORD=secret"]))
    if rng.random() < 0.4:
        out += ["  proxy:", "    image: nginx:1.27", '    ports: ["80:80"]', "    volumes:\n      - ./nginx.conf:/etc/nginx/nginx.conf:ro"]
    out += ["volumes:", "  dbdata:"]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dockerfiles", type=int, default=1000)
    parser.add_argument("--compose", type=int, default=200)
    parser.add_argument("--fixtures", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    dockerfiles = args.out / "dockerfiles"
    composes = args.out / "compose"
    dockerfiles.mkdir(parents=True, exist_ok=True)
    composes.mkdir(parents=True, exist_ok=True)
    fixtures = sorted(p for p in args.fixtures.iterdir() if p.suffix == ".Dockerfile" and "windows" not in p.name)
    compose_fixtures = sorted(p for p in args.fixtures.iterdir() if p.name.startswith("compose."))
    for i in range(args.dockerfiles):
        text = fixtures[i % len(fixtures)].read_text() if i % 10 == 0 else dockerfile(rng)
        (dockerfiles / f"svc{i:05d}.Dockerfile").write_text(text)
    for i in range(args.compose):
        text = compose_fixtures[i % len(compose_fixtures)].read_text() if i % 10 == 0 else compose(rng)
        (composes / f"compose.svc{i:05d}.yaml").write_text(text)
    (args.out / ".dockerignore").write_text(".git\n.env\n")
    (dockerfiles / ".dockerignore").write_text(".git\n.env\n")


if __name__ == "__main__":
    main()
