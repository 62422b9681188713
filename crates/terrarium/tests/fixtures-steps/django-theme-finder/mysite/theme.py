"""A staticfiles finder that compiles the site's theme when static files are listed.

Like finders that compile a CSS framework's SCSS, it writes what it compiles into a directory
of an installed package in site-packages (here next to Django's staticfiles app), not into
the project: collectstatic must be able to write there at build time, and the compiled file
must then be collected into STATIC_ROOT.
"""
import os

import django.contrib.staticfiles
from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

OUTPUT_DIR = os.path.join(
    os.path.dirname(django.contrib.staticfiles.__file__), "compiled-theme"
)
THEME_FILE = "theme/site.css"


def compile_theme():
    """Write the theme's CSS into OUTPUT_DIR and return its path."""
    colours = "".join(
        "  --%s: %s;\n" % (name, value) for name, value in sorted(settings.THEME.items())
    )
    css = (
        "/* compiled by mysite.theme.ThemeFinder */\n"
        ":root {\n%s}\n"
        "body { color: var(--primary); background: var(--background); }\n" % colours
    )
    path = os.path.join(OUTPUT_DIR, THEME_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(css)
    return path


class ThemeFinder(BaseFinder):
    """Finds the compiled theme, compiling it first when static files are listed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=OUTPUT_DIR)

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        found = os.path.join(OUTPUT_DIR, path)
        if path != THEME_FILE or not os.path.exists(found):
            return [] if find_all else None
        return [found] if find_all else found

    def list(self, ignore_patterns):
        compile_theme()
        yield THEME_FILE, self.storage
