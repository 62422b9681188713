//! `.dockerignore`: keeps secrets, VCS data, virtualenvs, caches and build output out of the
//! build context (L22), and the Docker files themselves, so editing them doesn't bust the cache.

/// The `.dockerignore` terrarium writes.
pub(crate) fn dockerignore() -> String {
    String::from(
        "# Written by `terrarium init`: what never belongs in the build context.\n\
         # Secrets (L22)\n\
         .env\n\
         .env.*\n\
         *.pem\n\
         *.key\n\
         # Version control and editors\n\
         .git\n\
         .hg\n\
         .svn\n\
         .idea\n\
         .vscode\n\
         # Virtualenvs: the image installs into its own site-packages (L04)\n\
         .venv\n\
         venv\n\
         # Caches and build output\n\
         **/__pycache__\n\
         **/*.py[cod]\n\
         .pytest_cache\n\
         .mypy_cache\n\
         .ruff_cache\n\
         .tox\n\
         .nox\n\
         .coverage\n\
         htmlcov\n\
         build\n\
         dist\n\
         *.egg-info\n\
         node_modules\n\
         # Container files: changing them should not rebuild the source layer (L06)\n\
         Dockerfile*\n\
         .dockerignore\n\
         compose*.y*ml\n\
         docker-compose*.y*ml\n",
    )
}
