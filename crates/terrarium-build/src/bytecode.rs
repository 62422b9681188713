//! Bytecode, compiled by the image's own interpreter in the sandbox, so containers never
//! compile at start-up (on a read-only root they can't cache what they compile, so every start
//! and every worker would compile everything again: `import flask, gunicorn.app.wsgiapp` takes
//! 3.5–4.3 s without bytecode against 0.5 s with it).
//!
//! Every `.pyc` uses PEP 552's `unchecked-hash` invalidation: it records the source's hash
//! instead of its mtime, Python never re-checks or rewrites it, and the same source gives the
//! same bytes on every build, so images stay reproducible.
//!
//! What is compiled, and where it goes:
//! - **start-up bytecode** (its own layer, between deps and app): every standard-library and
//!   dependency module that starting the service imports, found by importing the server's
//!   modules and the app's module in the sandbox with the plan's settings (placeholders for
//!   the required ones) and compiling what `sys.modules` then holds. Not everything: all of the
//!   standard library is 12 MB of bytecode and Django alone 10 MB; what a Flask service imports
//!   is about 3 MB. Modules imported later (on a first request) compile in memory as before.
//!   The layer is cached by the runtime, system and deps layers and the command: an edit of
//!   the app's code doesn't trace again (a new standard-library import is compiled at the next
//!   dependency change).
//! - **the app's own modules** (in the app layer, beside their sources, as `compileall`
//!   writes them): every `.py` of the build context. Each `.pyc` is cached by its source's
//!   hash and path, so a one-line edit compiles one file.
//!
//! An image of another architecture (`--platform linux/arm64` on an x86_64 machine) can't run
//! its interpreter here, and needs to: `.pyc` files hold marshalled code objects, the same on
//! every architecture for one CPython release. So this machine's image of the same plan is
//! traced instead (its start-up bytecode layer names the modules), and this machine's CPython
//! (the same Debian release, so the same magic number) compiles the other image's own `.py`
//! files at those paths, mounted read-only: each `.pyc` holds the hash of the file it sits
//! beside. The app's modules are compiled the same way (their cache is shared by both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use terrarium_image::{Cache, Content, Digest, Entry, LayerPath, LayerTree};
use terrarium_plan::{Plan, Server};
use terrarium_sandbox::{Mount, Rootfs, Run};
use terrarium_wheels::Target;

use crate::error::{BuildError, io_error};

/// Version of the bytecode recipes; bump to compile everything again.
const RECIPE: &str = "terrarium bytecode v6";

/// Imports the modules named on the command line, then, when `TERRARIUM_TRACE_APP` names the
/// served app (`module:object`, `module:factory()`), asks it for `TERRARIUM_TRACE_PATH` the
/// way its server would (WSGI, or ASGI when `TERRARIUM_TRACE_INTERFACE` is `asgi`), so the
/// modules a first request loads are compiled too (the start-up benchmark times the first
/// 200). A request that fails or hangs is given up quietly after 20 s: what it imported so far
/// still counts. Then writes the bytecode of every standard-library and site-packages module
/// loaded into `sys.argv[1]`, mirroring the in-image paths: as the import compiled it (each
/// source is compiled once, its `.pyc` made from the very code object the import ran, the way
/// `py_compile` makes it), else (the modules Python loads frozen at start, the server
/// packages' other modules) compiled by `py_compile`. Compiling everything a second time was a
/// third of the trace's time. The code is the same either way; marshal's back-references
/// depend on what else holds an object when it is written, so some files' bytes differ from
/// `py_compile`'s (18 of flask-requirements' 255), and they are the same in every build.
const TRACE: &str = r#"
import _imp, sys, _frozen_importlib_external as bootstrap
roots = tuple({"/usr/lib/python3", "/usr/local/lib/python3", sys.base_prefix + "/lib/python3"})
pycs = {}
to_code = bootstrap.SourceFileLoader.source_to_code
# The magic number as the int source hashes are keyed with: named differently by release
# (3.14 has `_imp.pyc_magic_number_token`, earlier ones `_RAW_MAGIC_NUMBER`).
token = getattr(_imp, "pyc_magic_number_token", None)
if token is None:
    token = getattr(bootstrap, "_RAW_MAGIC_NUMBER", None)
if token is None:
    token = int.from_bytes(bootstrap.MAGIC_NUMBER, "little")
def source_to_code(self, data, path, *args, **kwargs):
    code = to_code(self, data, path, *args, **kwargs)
    if kwargs.get("_optimize", -1) == -1 and isinstance(path, str) and path.startswith(roots):
        try:
            pycs[path] = bootstrap._code_to_hash_pyc(code, _imp.source_hash(token, data), False)
        except (AttributeError, TypeError):
            pass  # py_compile below compiles it instead
    return code
bootstrap.SourceFileLoader.source_to_code = source_to_code
import importlib, importlib.util, io, os, py_compile, signal
out, names = sys.argv[1], sys.argv[2:]
for name in names:
    optional = name.startswith("?")
    try:
        importlib.import_module(name.lstrip("?"))
    except BaseException as err:
        if not optional:
            print("terrarium: importing %s: %r" % (name, err), file=sys.stderr)

class Hung(Exception):
    pass

def hung(*_):
    raise Hung()

def first_request(spec, path, interface):
    module, _, attr = spec.partition(":")
    factory = attr.endswith("()")
    app = getattr(importlib.import_module(module), attr[:-2] if factory else attr)
    if factory:
        app = app()
    if interface == "asgi":
        import asyncio
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                 "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 40000),
                 "server": ("127.0.0.1", 8000)}
        async def lifespan_and_request():
            # Start-up first, as the server does (`lifespan` hooks import and connect), then
            # the request, then shut down; a hook that fails or doesn't answer in 10 s is
            # left behind.
            state = {}
            events = asyncio.Queue()
            events.put_nowait({"type": "lifespan.startup"})
            answered = asyncio.Event()
            async def lifespan_send(message):
                answered.set()
            lifespan = asyncio.ensure_future(app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state},
                events.get, lifespan_send))
            waiter = asyncio.ensure_future(answered.wait())
            await asyncio.wait([lifespan, waiter], timeout=10,
                               return_when=asyncio.FIRST_COMPLETED)
            scope["state"] = dict(state)
            received = []
            async def receive():
                received.append(1)
                if len(received) == 1:
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.disconnect"}
            async def send(message):
                pass
            try:
                await asyncio.wait_for(app(scope, receive, send), 10)
            finally:
                events.put_nowait({"type": "lifespan.shutdown"})
                await asyncio.wait([lifespan], timeout=5)
                waiter.cancel()
        asyncio.run(lifespan_and_request())
    else:
        environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path,
                   "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "8000",
                   "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost",
                   "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0),
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
                   "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
                   "wsgi.multiprocess": True, "wsgi.run_once": False}
        body = app(environ, lambda status, headers, exc_info=None: (lambda data: None))
        try:
            for _ in body:
                pass
        finally:
            getattr(body, "close", lambda: None)()

spec = os.environ.get("TERRARIUM_TRACE_APP")
if spec:
    signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        first_request(spec, os.environ.get("TERRARIUM_TRACE_PATH", "/"),
                      os.environ.get("TERRARIUM_TRACE_INTERFACE", "wsgi"))
    except BaseException:
        pass
    finally:
        signal.alarm(0)
loaded = [m for m in list(sys.modules.values())
          if isinstance(getattr(m, "__file__", None), str)
          and m.__file__.endswith(".py") and m.__file__.startswith(roots)]
files = {m.__file__ for m in loaded}
# The server's own packages import parts of themselves lazily, in the workers it starts
# (multiprocessing's spawn, uvicorn's supervisors, h11, gunicorn's control socket): every
# module beside one that loaded.
whole = set(os.environ.get("TERRARIUM_TRACE_WHOLE", "").split())
for m in loaded:
    if m.__name__.partition(".")[0] in whole:
        folder = os.path.dirname(m.__file__)
        files.update(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py"))
files = sorted(files)
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for path in files:
    target = out + importlib.util.cache_from_source(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if path in pycs:
        with open(target, "wb") as pyc:
            pyc.write(pycs[path])
    else:
        py_compile.compile(path, cfile=target, dfile=path, doraise=False, invalidation_mode=mode)
"#;

/// Compiles each `/app/...` source named in `sys.argv[2:]` to `sys.argv[1]` + its path; a
/// file that doesn't compile (a syntax error, Python 2) is reported and skipped.
const COMPILE: &str = r#"
import importlib.util, os, py_compile, sys
out = sys.argv[1]
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for path in sys.argv[2:]:
    target = out + "/" + path.lstrip("/")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        py_compile.compile(path, cfile=target, dfile=path, doraise=True, invalidation_mode=mode)
    except py_compile.PyCompileError as err:
        print("terrarium: not compiled: %s" % err.msg.strip().splitlines()[-1], file=sys.stderr)
"#;

/// Compiles every `.py` under the directories given that has no bytecode beside it yet, into
/// `__pycache__` under the output directory; a file that doesn't compile (a template, Python 2
/// code a package ships) is left out.
const COMPILE_TREES: &str = r#"
import importlib.util, os, py_compile, sys
out = sys.argv[1]
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for top in sys.argv[2:]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            cached = importlib.util.cache_from_source(path)
            if os.path.exists(cached):
                continue
            target = out + "/" + cached.lstrip("/")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                py_compile.compile(path, cfile=target, dfile=path, doraise=True, invalidation_mode=mode)
            except (py_compile.PyCompileError, UnicodeDecodeError):
                pass
"#;

/// Compiles, for an image of another architecture mounted at `sys.argv[2]`, each in-image
/// path in `sys.argv[3:]` that it holds, into `sys.argv[1]` + the path's `__pycache__` place;
/// the code objects name the in-image path. A file that doesn't compile is left out.
const COMPILE_FOREIGN: &str = r#"
import importlib.util, os, py_compile, sys
out, image = sys.argv[1], sys.argv[2]
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for path in sys.argv[3:]:
    source = image + path
    if not os.path.isfile(source):
        continue
    target = out + importlib.util.cache_from_source(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        py_compile.compile(source, cfile=target, dfile=path, doraise=True, invalidation_mode=mode)
    except (py_compile.PyCompileError, UnicodeDecodeError):
        pass
"#;

/// The modules starting the plan's server loads before the app: its entry point and workers.
fn server_modules(plan: &Plan) -> Vec<String> {
    // Modules a `?` marks are imported when they exist (they depend on the server's version
    // and extras); a missing one is no warning.
    let uvicorn_core = [
        "uvicorn.lifespan.on",
        "uvicorn.loops.auto",
        "uvicorn.protocols.http.auto",
        "uvicorn.protocols.websockets.auto",
    ];
    let uvicorn_workers = [
        "?uvicorn.supervisors.multiprocess",
        "?uvicorn.loops.asyncio",
        "?uvicorn.protocols.utils",
        "?uvicorn.protocols.http.h11_impl",
        "?uvicorn.protocols.http.httptools_impl",
        "?h11",
        "multiprocessing.spawn",
        "multiprocessing.popen_spawn_posix",
        "multiprocessing.resource_tracker",
    ];
    let mut modules: Vec<&str> = match &plan.server.value {
        Server::Gunicorn { worker_class } => {
            let mut m = vec![
                "gunicorn.app.wsgiapp",
                "gunicorn.arbiter",
                "gunicorn.workers.sync",
                "gunicorn.glogging",
                "?gunicorn.ctl.server",
            ];
            if let Some(class) = worker_class {
                m.push(class.rsplit_once('.').map_or(class.as_str(), |(m, _)| m));
                if class.starts_with("uvicorn") {
                    m.extend(uvicorn_core);
                    m.extend(uvicorn_workers);
                }
            }
            m
        }
        Server::Uvicorn => {
            let mut m = vec!["uvicorn", "uvicorn.main"];
            m.extend(uvicorn_core);
            m.extend(uvicorn_workers);
            m
        }
        Server::Hypercorn => vec!["hypercorn.__main__", "hypercorn.asyncio.run"],
        Server::ConsoleScript { .. } | Server::Configured => Vec::new(),
    };
    modules.extend([
        "encodings.idna",
        "encodings.ascii",
        "encodings.latin_1",
        "encodings.utf_8_sig",
        "json",
        "logging.config",
        "pkgutil",
    ]);
    let mut modules: Vec<String> = modules.into_iter().map(str::to_owned).collect();
    modules.extend(app_module(plan));
    modules
}

/// The app the command serves, as the server is given it (`quotes:create_app()`, or
/// `main:create_app` after uvicorn's `--factory`).
fn app_target(plan: &Plan) -> Option<(usize, &str)> {
    plan.command
        .value
        .iter()
        .enumerate()
        .rev()
        .find(|(_, arg)| arg.contains(':') && !arg.starts_with('-') && !arg.contains('/'))
        .map(|(index, arg)| (index, arg.as_str()))
}

/// Packages of the servers whose workers import parts of them after start-up: wherever one of
/// their modules loads, the modules beside it are compiled too (1–2 MB at most, against the
/// 10+ MB of compiling whole dependencies).
const SERVER_PACKAGES: [&str; 7] = [
    "gunicorn",
    "uvicorn",
    "hypercorn",
    "h11",
    "h2",
    "wsproto",
    "multiprocessing",
];

/// What the trace asks for its first request: the app (`module:object` or
/// `module:factory()`), the health route (or `/`) and the interface its server speaks.
fn first_request_env(plan: &Plan) -> Vec<(String, String)> {
    let Some((index, target)) = app_target(plan) else {
        return Vec::new();
    };
    let factory = index > 0 && plan.command.value[index - 1] == "--factory";
    let spec = if factory && !target.ends_with("()") {
        format!("{target}()")
    } else {
        target.to_owned()
    };
    let interface = match &plan.server.value {
        Server::Gunicorn { worker_class: None } => "wsgi",
        Server::Gunicorn { .. } | Server::Uvicorn | Server::Hypercorn => "asgi",
        Server::ConsoleScript { .. } | Server::Configured => return Vec::new(),
    };
    let path = plan.healthcheck.value.clone().unwrap_or_else(|| "/".into());
    vec![
        ("TERRARIUM_TRACE_APP".into(), spec),
        ("TERRARIUM_TRACE_PATH".into(), path),
        ("TERRARIUM_TRACE_INTERFACE".into(), interface.into()),
    ]
}

/// The module of the app the command serves (`quotes` of `quotes:create_app()`).
fn app_module(plan: &Plan) -> Option<String> {
    let (_, target) = app_target(plan)?;
    let module = target.split(':').next()?;
    let valid = !module.is_empty()
        && module
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'));
    valid.then(|| module.to_owned())
}

/// The environment of a sandboxed run: the image's own, placeholders for the settings the
/// image must be given at run time (so code that reads them at import time can be imported),
/// the app on `sys.path`.
pub(crate) fn sandbox_env(plan: &Plan) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = crate::RUNTIME_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.extend(plan.image_env());
    env.extend(plan.build_placeholders());
    let mut path = vec!["/app".to_owned()];
    // gunicorn's `--chdir DIR` and uvicorn's `--app-dir DIR` import the app from DIR (a
    // Django project in a subdirectory, a `src/` whose modules import each other).
    if let Some(dir) = plan
        .command
        .value
        .windows(2)
        .find(|pair| pair[0] == "--chdir" || pair[0] == "--app-dir")
        .map(|pair| pair[1].clone())
    {
        path.insert(0, dir);
    }
    if let Some(install) = &plan.install_project.value
        && install.import_root != "/app"
    {
        path.insert(0, install.import_root.clone());
    }
    env.push(("PYTHONPATH".into(), path.join(":")));
    env.push(("HOME".into(), "/tmp".into()));
    env
}

/// A tree of everything under `dir`, at the same paths in the layer: root-owned, 0755
/// directories, 0644 files.
fn tree_of(dir: &Path) -> Result<LayerTree, BuildError> {
    let mut tree = LayerTree::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for child in std::fs::read_dir(&current).map_err(io_error(&current))? {
            let child = child.map_err(io_error(&current))?;
            let path = child.path();
            let rel = path
                .strip_prefix(dir)
                .map_err(|_| BuildError::Runtime {
                    message: format!("{} is outside {}", path.display(), dir.display()),
                })?
                .to_string_lossy()
                .into_owned();
            let layer_path = LayerPath::new(&rel)?;
            let meta = std::fs::symlink_metadata(&path).map_err(io_error(&path))?;
            if meta.is_dir() {
                tree.insert(Entry::directory(layer_path, 0o755), Content::Empty);
                stack.push(path);
            } else if meta.is_file() {
                tree.insert(
                    Entry::file(layer_path, meta.len(), 0o644),
                    Content::Path(path),
                );
            }
        }
    }
    Ok(tree)
}

/// The start-up bytecode of `plan` in `root` (runtime, system and deps layers), as a tree
/// (empty when the service imports nothing the runtime or deps hold).
pub(crate) fn startup_tree(
    plan: &Plan,
    root: &Rootfs,
    target: &Target,
    out: &Path,
) -> Result<(LayerTree, Vec<String>), BuildError> {
    let trace = Script {
        code: TRACE,
        args: server_modules(plan),
        env: [("TERRARIUM_TRACE_WHOLE".into(), SERVER_PACKAGES.join(" "))]
            .into_iter()
            .chain(first_request_env(plan))
            .collect(),
        mounts: Vec::new(),
    };
    let warnings = run_script(root, plan, target, trace, out, 120)?
        .into_iter()
        .map(|l| format!("start-up bytecode: {l} (the modules it would load compile at start)"))
        .collect();
    Ok((tree_of(out)?, warnings))
}

/// The bytecode of every module in site-packages that has none yet, for a test image: the test
/// runner and whatever the suite imports load from it instead of compiling at every run (the
/// container's root is read-only). `root` holds every layer of the test image.
pub(crate) fn test_tree(
    plan: &Plan,
    root: &Rootfs,
    target: &Target,
    out: &Path,
) -> Result<LayerTree, BuildError> {
    let compile = Script {
        code: COMPILE_TREES,
        args: vec![format!("/{}", target.site_packages())],
        env: Vec::new(),
        mounts: Vec::new(),
    };
    run_script(root, plan, target, compile, out, 300)?;
    tree_of(out)
}

/// The key of a test image's bytecode layer: the recipe and the layers below it.
pub(crate) fn test_key(layers: &[Digest]) -> Digest {
    let mut key = format!("{RECIPE}\ntest\n");
    for digest in layers {
        key.push_str(&format!("{digest}\n"));
    }
    Digest::of(key.as_bytes())
}

/// One of the scripts above, its arguments and what it adds to the sandbox's environment and
/// mounts.
struct Script {
    code: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    mounts: Vec<Mount>,
}

/// Where an image of another architecture is mounted for [`COMPILE_FOREIGN`].
const FOREIGN_ROOT: &str = "/terrarium/image";

/// The in-image sources of the bytecode in `traced` (a root of a start-up bytecode layer
/// alone): `/usr/lib/python3.11/json/__init__.py` for its
/// `usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc`, sorted.
pub(crate) fn traced_sources(traced: &Rootfs) -> Result<Vec<String>, BuildError> {
    let mut sources = Vec::new();
    let mut stack = vec![traced.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for child in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let child = child.map_err(io_error(&dir))?;
            let path = child.path();
            let kind = child.file_type().map_err(io_error(&path))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(relative) = path.strip_prefix(traced.path()) else {
                continue;
            };
            if let Some(source) = pyc_source(&relative.to_string_lossy()) {
                sources.push(source);
            }
        }
    }
    sources.sort();
    Ok(sources)
}

/// The source of a PEP 3147 `.pyc` path (`a/__pycache__/m.cpython-311.pyc` → `/a/m.py`).
fn pyc_source(pyc: &str) -> Option<String> {
    let (dir, file) = pyc.rsplit_once("/__pycache__/")?;
    let stem = file.strip_suffix(".pyc")?;
    let (module, _tag) = stem.rsplit_once('.')?;
    Some(format!("/{dir}/{module}.py"))
}

/// The bytecode of `sources` (in-image paths) compiled from the image of another architecture
/// at `image` by the CPython of `compiler` (this machine's runtime of the same release), as a
/// tree.
pub(crate) fn foreign_tree(
    plan: &Plan,
    compiler: &Rootfs,
    image: &Rootfs,
    target: &Target,
    sources: &[String],
    out: &Path,
) -> Result<LayerTree, BuildError> {
    let mut args = vec![FOREIGN_ROOT.to_owned()];
    args.extend(sources.iter().cloned());
    let script = Script {
        code: COMPILE_FOREIGN,
        args,
        env: Vec::new(),
        mounts: vec![Mount {
            host: image.path().to_path_buf(),
            at: FOREIGN_ROOT.into(),
            writable: false,
        }],
    };
    run_script(compiler, plan, target, script, out, 300)?;
    tree_of(out)
}

/// The key of an image of another architecture's start-up bytecode layer: the recipe, the
/// native bytecode layer that names the modules, and the layers below.
pub(crate) fn foreign_key(traced: &Digest, layers: &[Digest]) -> Digest {
    let mut key = format!("{RECIPE}\nforeign\n{traced}\n");
    for digest in layers {
        key.push_str(&format!("{digest}\n"));
    }
    Digest::of(key.as_bytes())
}

/// Run one of the scripts above in `root` with the project at `/app` (read-only) and `out`
/// at `/terrarium/out`; returns the lines it reported (`terrarium: …`).
fn run_script(
    root: &Rootfs,
    plan: &Plan,
    target: &Target,
    script: Script,
    out: &Path,
    timeout_secs: u64,
) -> Result<Vec<String>, BuildError> {
    let mut env = sandbox_env(plan);
    env.extend(script.env);
    let mut argv = vec![
        target.interpreter(),
        "-c".into(),
        script.code.into(),
        "/terrarium/out".into(),
    ];
    argv.extend(script.args);
    let mut mounts = vec![
        Mount {
            host: plan.root.clone(),
            at: "/app".into(),
            writable: false,
        },
        Mount {
            host: out.to_path_buf(),
            at: "/terrarium/out".into(),
            writable: true,
        },
    ];
    mounts.extend(script.mounts);
    let output = root.run(&Run {
        argv,
        env,
        cwd: "/app".into(),
        mounts,
        timeout: Some(Duration::from_secs(timeout_secs)),
        changes: None,
    })?;
    Ok(String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("terrarium: "))
        .map(str::to_owned)
        .collect())
}

/// The key of the start-up bytecode layer.
pub(crate) fn startup_key(plan: &Plan, layers: &[Digest]) -> Digest {
    let mut key = format!(
        "{RECIPE}\nstartup\n{}\n{:?}\n",
        plan.command.value.join("\u{1f}"),
        plan.healthcheck.value
    );
    for layer in layers {
        key.push_str(&layer.to_string());
        key.push('\n');
    }
    Digest::of(key.as_bytes())
}

/// Compiled `.pyc` bytes by their source's in-image path, and what could not be compiled.
pub(crate) type Compiled = (BTreeMap<String, Vec<u8>>, Vec<String>);

/// `.pyc` bytes for each `(in-image path, host path)` source, from the cache or compiled in
/// `root` (one sandbox run for every source not cached yet). Sources that don't compile are
/// left out, with a warning.
pub(crate) fn app_bytecode(
    cache: &Cache,
    root: impl FnOnce() -> Result<Rootfs, BuildError>,
    plan: &Plan,
    target: &Target,
    sources: &[(String, PathBuf)],
) -> Result<Compiled, BuildError> {
    let python = target.python_version();
    let mut compiled = BTreeMap::new();
    let mut missing = Vec::new();
    let mut keys = BTreeMap::new();
    for (at, host) in sources {
        let bytes = std::fs::read(host).map_err(io_error(host))?;
        let key = format!(
            "pyc/{}",
            Digest::of(format!("{RECIPE}\n{python}\n{at}\n").as_bytes())
                .hex()
                .get(..16)
                .unwrap_or_default()
        );
        let key = format!("{key}-{}", Digest::of(&bytes).hex());
        keys.insert(at.clone(), key.clone());
        match cache.read_meta(&key)? {
            Some(pyc) => {
                compiled.insert(at.clone(), pyc);
            }
            None => missing.push(at.clone()),
        }
    }
    let mut warnings = Vec::new();
    if missing.is_empty() {
        return Ok((compiled, warnings));
    }
    let root = root()?;
    let out = tempfile::Builder::new()
        .prefix("pyc-")
        .tempdir_in(cache.tmp_dir()?)
        .map_err(io_error(cache.root()))?;
    warnings.extend(run_script(
        &root,
        plan,
        target,
        Script {
            code: COMPILE,
            args: missing.clone(),
            env: Vec::new(),
            mounts: Vec::new(),
        },
        out.path(),
        300,
    )?);
    for at in missing {
        let path = out.path().join(at.trim_start_matches('/'));
        if let Ok(pyc) = std::fs::read(&path) {
            if let Some(key) = keys.get(&at) {
                cache.write_meta(key, &pyc)?;
            }
            compiled.insert(at, pyc);
        }
    }
    Ok((compiled, warnings))
}

/// Where CPython looks for the bytecode of `source` (`/app/pkg/mod.py` →
/// `/app/pkg/__pycache__/mod.cpython-313.pyc`).
pub(crate) fn pyc_path(source: &str, python: &str) -> Option<String> {
    let (dir, file) = source.rsplit_once('/')?;
    let stem = file.strip_suffix(".py")?;
    let tag = python.replace('.', "");
    Some(format!("{dir}/__pycache__/{stem}.cpython-{tag}.pyc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_paths_follow_pep_3147() {
        assert_eq!(
            pyc_path("/app/pkg/mod.py", "3.13").as_deref(),
            Some("/app/pkg/__pycache__/mod.cpython-313.pyc")
        );
        assert_eq!(pyc_path("/app/README.md", "3.13"), None);
    }

    #[test]
    fn traced_bytecode_names_its_sources() {
        assert_eq!(
            pyc_source("usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc").as_deref(),
            Some("/usr/lib/python3.11/json/__init__.py")
        );
        let back = pyc_path(
            "/usr/local/lib/python3.11/dist-packages/flask/app.py",
            "3.11",
        )
        .unwrap();
        assert_eq!(
            pyc_source(back.trim_start_matches('/')).as_deref(),
            Some("/usr/local/lib/python3.11/dist-packages/flask/app.py")
        );
        assert_eq!(pyc_source("usr/lib/python3.11/os.py"), None);
    }
}
