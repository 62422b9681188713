"""A todo API whose project metadata uv would refuse."""

import sys

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok", "python": sys.version.split()[0], "module": __name__}
