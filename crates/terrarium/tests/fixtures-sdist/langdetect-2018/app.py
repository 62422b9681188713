"""A WSGI service of mid-2018 using langdetect, whose releases of that time are source
distributions only. The setuptools of that day, which would build them, doesn't run on any
Python a Debian release ships today: the build tools come from the Python's own era."""
import json
from urllib.parse import parse_qs

from langdetect import DetectorFactory, detect

DetectorFactory.seed = 0


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = {"status": "ok"}
    elif path == "/":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        text = query.get("text", ["ceci est une phrase écrite en français"])[0]
        body = {"language": detect(text)}
    else:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
