"""A FastAPI service that requires CPython 3.14 (it uses nothing older releases lack, but says so)."""

import sys

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok", "python": "%d.%d" % sys.version_info[:2]}
