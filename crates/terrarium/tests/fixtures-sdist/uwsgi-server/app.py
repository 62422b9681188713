"""A framework-free WSGI application served by uWSGI, which PyPI has only as a source
distribution: terrarium compiles it (and its embedded Python plugin) from the sdist."""
import json
import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        body = {"status": "ok"}
    elif path == "/":
        import uwsgi

        body = {"message": "hello from uwsgi", "server": uwsgi.version.decode(), "python": sys.version.split()[0]}
    else:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
