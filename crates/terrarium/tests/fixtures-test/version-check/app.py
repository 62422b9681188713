"""A tiny Flask service whose tests notice the Python they run on."""

import sys

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health():
    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
