"""terrarium's PEP 517 build frontend: call one hook of a source tree's build backend.

Run by terrarium inside its build sandbox with the target's own Python:

    python3 -u frontend.py REQUEST.json

REQUEST names the source tree, the backend (`module:object`), its `backend-path`, the hook
(`requires` or `build`), the wheel output directory and where to write the hook's result as
JSON. The backend's output goes to stdout; when the hook fails, one line naming the exception
is printed last, so the tail of the output shows the cause.
"""

import importlib
import json
import os
import sys


def load_backend(request):
    source = request["source"]
    for entry in reversed(request.get("backend_path") or []):
        sys.path.insert(0, os.path.normpath(os.path.join(source, entry)))
    module_name, _, attribute = request["backend"].partition(":")
    backend = importlib.import_module(module_name.strip())
    for part in attribute.strip().split(".") if attribute.strip() else []:
        backend = getattr(backend, part)
    return backend


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        request = json.load(handle)
    # One ordered stream: the backend's and the compiler's messages interleave as they happen.
    os.dup2(1, 2)
    os.chdir(request["source"])
    try:
        backend = load_backend(request)
        if request["hook"] == "requires":
            hook = getattr(backend, "get_requires_for_build_wheel", None)
            result = list(hook({})) if hook is not None else []
        else:
            result = backend.build_wheel(request["out"], {}, None)
    except BaseException as error:  # noqa: BLE001 - reported to terrarium, which stops the build
        sys.stdout.flush()
        print(f"terrarium: the build backend failed: {type(error).__name__}: {error}", flush=True)
        sys.exit(1)
    with open(request["result"], "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
