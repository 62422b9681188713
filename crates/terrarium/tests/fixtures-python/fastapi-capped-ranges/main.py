"""A service whose capped ranges rule out the newest Python."""

import platform

import asyncpg
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health():
    # asyncpg's compiled protocol module is imported with the package: a wheel built for
    # another Python would fail here, not at install time.
    return {
        "status": "ok",
        "python": platform.python_version(),
        "asyncpg": asyncpg.__version__,
    }
