"""Throwaway PostgreSQL, Redis, MongoDB-wire, SMTP and Slack-webhook servers for the tests and the demo.

Why: the checks must run against real servers over TCP (DESIGN §5), but never against the machine's own
services or fixed ports. Each launcher binds a free port on 127.0.0.1, keeps its files in a private
temp directory and removes everything on ``stop()``. Cleanup is layered so that nothing outlives the
Python process: ``stop()`` (context managers, pytest finalizers), an ``atexit`` hook, and for the
server subprocesses a parent-death signal (``setpriv --pdeathsig``), which also covers SIGKILL.
The pdeath signal fires when the *thread* that started the server exits: start servers from the
main thread (pytest and the demo do).

Existing servers can be used instead through environment variables (each an admin URL):
``RECON_TEST_PG_URL``, ``RECON_TEST_REDIS_URL``, ``RECON_TEST_MONGO_URL`` (or ``MONGO_TEST_URI``).
"""

from __future__ import annotations

import atexit
import email
import email.policy
import glob
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

from reconciliation import config

ENV_PG_URL = "RECON_TEST_PG_URL"
ENV_REDIS_URL = "RECON_TEST_REDIS_URL"
ENV_MONGO_URLS = ("RECON_TEST_MONGO_URL", "MONGO_TEST_URI")

PG_INSTALL_HINT = "apt-get install -y postgresql"
REDIS_INSTALL_HINT = "apt-get install -y redis-server"
_INCLUDE_DIR = Path(__file__).resolve().parents[2]


class ServerError(RuntimeError):
    """A throwaway server could not be found, started or reached; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the caller retries if another process takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_for(
    predicate: Any, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None
) -> Any:
    """Poll `predicate` until it returns truthy; fail fast if `proc` dies, with the log tail in the error."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"{what} exited with code {proc.returncode} during start-up{_tail(log)}")
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(0.05)
    raise ServerError(f"{what} not ready after {timeout:.0f}s (last error: {last_exc!r}){_tail(log)}")


def _tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " (tail) ---\n" + "\n".join(text)


_OWNER_FILE = ".recon-owner-pid"
_swept = False


def private_dir(prefix: str) -> Path:
    """A new temp directory tagged with our pid, so a later run can remove it if we die uncleanly."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / _OWNER_FILE).write_text(str(os.getpid()))
    return path


def sweep_stale_dirs() -> list[Path]:
    """Remove temp directories of earlier runs whose owning process is gone (SIGKILL leaves them behind)."""
    removed = []
    for candidate in glob.glob(os.path.join(tempfile.gettempdir(), "recon-*")):
        owner = Path(candidate) / _OWNER_FILE
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(Path(candidate))
    return removed


def _is_root() -> bool:
    return os.geteuid() == 0


def _child_prefix(deathsig: str, user: str | None = None) -> list[str]:
    """Command prefix: optional privilege drop plus a parent-death signal (util-linux setpriv)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ServerError(f"need setpriv or runuser to run as {user!r} (apt-get install -y util-linux)")
            return [runuser, "-u", user, "--"]
        return []
    cmd = [setpriv, f"--pdeathsig={deathsig}"]
    if user:
        cmd += [f"--reuid={user}", f"--regid={user}", "--init-groups"]
    return [*cmd, "--"]


class _Process:
    """A server subprocess in its own session (terminal Ctrl-C reaches only us; we stop it in order)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: str | None = None):
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True,
            )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        except ProcessLookupError:
            pass


_LIVE: set[Any] = set()  # started, not yet stopped (strong refs: atexit must still see them)


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:  # best effort at interpreter exit
            pass


class _Server:
    """Common start/stop/context-manager plumbing; `external` servers are never started or stopped."""

    external: bool = False
    startup_seconds: float = 0.0

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def start(self):  # returns self (subclass)
        """Start the server (no-op for external servers); returns self."""
        if self.external:
            return self
        global _swept
        if not _swept:
            _swept = True
            sweep_stale_dirs()
        t0 = time.monotonic()
        _LIVE.add(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the server and delete its files (idempotent)."""
        if self.external:
            return
        _LIVE.discard(self)
        self._stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> Path:
    """The PostgreSQL server binaries: `pg_config --bindir`, /usr/lib/postgresql/<newest>/bin, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (subprocess.SubprocessError, OSError):
            pass
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all((bindir / b).is_file() for b in ("initdb", "postgres")):
            return bindir
    raise ServerError(
        "PostgreSQL server binaries (initdb, postgres) not found via pg_config, /usr/lib/postgresql/*/bin or PATH. "
        f"Install them with `{PG_INSTALL_HINT}`, or set {ENV_PG_URL} to an admin URL of an existing server."
    )


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster (initdb as the `postgres` user when root, trust auth, no fsync)."""

    def __init__(self, *, host: str = "127.0.0.1", shared_buffers: str = "256MB", max_connections: int = 200):
        self.host = host
        self.port = 0
        self.user = "postgres"
        self.password: str | None = None
        self.shared_buffers = shared_buffers
        self.max_connections = max_connections
        self.base_dir: Path | None = None
        self._proc: _Process | None = None
        self._admin_db = "postgres"

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        """An existing server reached through an admin URL or conninfo (never started or stopped here)."""
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(url)
        srv = cls(host=str(params.get("host") or "127.0.0.1"))
        srv.external = True
        srv.port = int(params.get("port") or 5432)
        srv.user = str(params.get("user") or "postgres")
        srv.password = str(params["password"]) if params.get("password") else None
        srv._admin_db = str(params.get("dbname") or "postgres")
        srv._external_url = url
        return srv

    @property
    def admin_conninfo(self) -> str:
        """Conninfo of the maintenance database, for CREATE/DROP DATABASE."""
        return self.conninfo(self._admin_db)

    def conninfo(self, dbname: str) -> str:
        """Conninfo (key=value form) of one database on this server."""
        from psycopg.conninfo import make_conninfo

        if self.external:
            return make_conninfo(self._external_url, dbname=dbname)
        return make_conninfo(host=self.host, port=str(self.port), user=self.user, dbname=dbname)

    def airflow_conn(self, dbname: str) -> str:
        """The AIRFLOW_CONN_* JSON value of one database."""
        conn: dict[str, Any] = {
            "conn_type": "postgres", "host": self.host, "port": self.port,
            "login": self.user, "schema": dbname,
        }  # fmt: skip
        if self.password:
            conn["password"] = self.password
        return json.dumps(conn)

    def _start(self) -> None:
        bindir = find_pg_bindir()
        run_as = "postgres" if _is_root() else None
        if run_as:
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError:
                raise ServerError(
                    f"running as root but there is no '{run_as}' system user for initdb/postgres; "
                    f"`{PG_INSTALL_HINT}` creates it"
                ) from None
        self.base_dir = private_dir("recon-pg-")
        data = self.base_dir / "data"
        log = self.base_dir / "postgres.log"
        if run_as:
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base_dir, 0o700)
        initdb = [
            *_child_prefix("KILL", run_as), str(bindir / "initdb"), "-D", str(data), "-U", self.user,
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        res = subprocess.run(initdb, capture_output=True, text=True, timeout=120, cwd=str(self.base_dir))
        if res.returncode != 0:
            detail = res.stderr.strip() or res.stdout.strip()
            hint = ""
            if run_as and "ermission denied" in detail:
                hint = f" (the {run_as!r} user must reach {self.base_dir}; point TMPDIR at a directory it can traverse)"
            raise ServerError(f"initdb failed ({res.returncode}): {detail}{hint}")
        for attempt in range(5):
            self.port = free_port(self.host)
            argv = [
                *_child_prefix("INT", run_as), str(bindir / "postgres"), "-D", str(data),
                "-c", f"listen_addresses={self.host}", "-p", str(self.port),
                "-c", f"unix_socket_directories={self.base_dir}",
                "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
                "-c", f"shared_buffers={self.shared_buffers}", "-c", f"max_connections={self.max_connections}",
                "-c", "log_min_messages=warning", "-c", "timezone=UTC",
            ]  # fmt: skip
            self._proc = _Process(argv, log, cwd=str(self.base_dir))
            try:
                _wait_for(self._ping, 60, f"PostgreSQL on port {self.port}", self._proc.proc, log)
                return
            except ServerError:
                if attempt < 4 and "already in use" in _tail(log, 5):
                    continue  # lost the free-port race; try another port
                raise

    def _ping(self) -> bool:
        import psycopg

        with psycopg.connect(self.admin_conninfo, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGINT, timeout=30)  # fast shutdown, like `pg_ctl stop -m fast`
            self._proc = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


# -------------------------------------------------------------------------------------------------- Redis


class RedisServer(_Server):
    """A throwaway redis-server (no persistence) with many logical databases for per-test isolation."""

    def __init__(self, *, host: str = "127.0.0.1", databases: int = 256):
        self.host = host
        self.port = 0
        self.password: str | None = None
        self.databases = databases
        self.base_dir: Path | None = None
        self._proc: _Process | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisServer:
        """An existing server (redis://[:password@]host:port[/db]); never started or stopped here."""
        parts = urlsplit(url)
        srv = cls(host=parts.hostname or "127.0.0.1")
        srv.external = True
        srv.port = parts.port or 6379
        srv.password = parts.password
        srv.databases = 16
        return srv

    @property
    def url(self) -> str:
        """URL of database 0."""
        return self.url_for_db(0)

    def url_for_db(self, db: int) -> str:
        """URL of one logical database."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def airflow_conn(self, db: int) -> str:
        """The AIRFLOW_CONN_* JSON value for one logical database."""
        conn: dict[str, Any] = {"conn_type": "redis", "host": self.host, "port": self.port, "extra": {"db": db}}
        if self.password:
            conn["password"] = self.password
        return json.dumps(conn)

    def client(self, db: int = 0) -> Any:
        """A redis-py client of one logical database."""
        import redis

        return redis.Redis.from_url(self.url_for_db(db))

    def _start(self) -> None:
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
        )
        if binary is None:
            raise ServerError(
                f"redis-server not found; install it with `{REDIS_INSTALL_HINT}`, or set {ENV_REDIS_URL} "
                "to the URL of an existing server"
            )
        self.base_dir = private_dir("recon-redis-")
        log = self.base_dir / "redis.log"
        for attempt in range(5):
            self.port = free_port(self.host)
            argv = [
                *_child_prefix("TERM"), binary, "--port", str(self.port), "--bind", self.host,
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.base_dir),
                "--databases", str(self.databases),
            ]  # fmt: skip
            self._proc = _Process(argv, log, cwd=str(self.base_dir))
            try:
                _wait_for(lambda: self.client().ping(), 30, f"redis-server on port {self.port}", self._proc.proc, log)
                return
            except ServerError:
                if attempt < 4 and "in use" in _tail(log, 5):
                    continue
                raise

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM)
            self._proc = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


# ------------------------------------------------------------------------------------- MongoDB (nx-27017)


class MongoWireServer(_Server):
    """nx-27017 (MongoDB wire protocol over SQLite) through our keyword-safe launcher (mongo_wire.py)."""

    def __init__(self, *, host: str = "127.0.0.1", data_dir: str = "memory"):
        self.host = host
        self.port = 0
        self.data_dir = data_dir
        self.base_dir: Path | None = None
        self._proc: _Process | None = None
        self._external_uri: str | None = None

    @classmethod
    def from_url(cls, uri: str) -> MongoWireServer:
        """A real MongoDB (mongodb://...); never started or stopped here."""
        parts = urlsplit(uri)
        srv = cls(host=parts.hostname or "127.0.0.1")
        srv.external = True
        srv.port = parts.port or 27017
        srv._external_uri = uri
        return srv

    @property
    def uri(self) -> str:
        """mongodb:// URI for pymongo."""
        return self._external_uri or f"mongodb://{self.host}:{self.port}/"

    def airflow_conn(self) -> str:
        """The AIRFLOW_CONN_* value in URI form: mongo://[user:pw@]host:port/[?options] (conn_type mongo)."""
        parts = urlsplit(self.uri)
        query = parts.query
        if parts.scheme == "mongodb+srv":
            query = "&".join(q for q in (query, "srv=true") if q)
        return urlunsplit(("mongo", parts.netloc, "/", query, ""))

    def client(self, **kwargs: Any) -> Any:
        """A pymongo client (short server-selection timeout so a dead server fails fast)."""
        import pymongo

        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def _start(self) -> None:
        self.base_dir = private_dir("recon-mongo-")
        log = self.base_dir / "nx-27017.log"
        port_file = self.base_dir / "port"
        data_dir = self.data_dir if self.data_dir == "memory" else str(Path(self.data_dir).resolve())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_INCLUDE_DIR), env.get("PYTHONPATH")) if p)
        argv = [
            *_child_prefix("TERM"), sys.executable, "-m", "reconciliation.demo.mongo_wire",
            "--host", self.host, "--port", "0", "--port-file", str(port_file),
            "--data-dir", data_dir, "--log-file", str(log),
        ]  # fmt: skip
        self._proc = _Process(argv, self.base_dir / "stdout.log", env=env, cwd=str(self.base_dir))

        def bound_port() -> int:
            return int(port_file.read_text().strip()) if port_file.exists() else 0

        self.port = _wait_for(bound_port, 60, "nx-27017 (mongo_wire)", self._proc.proc, self.base_dir / "stdout.log")

        def hello() -> bool:
            with self.client(serverSelectionTimeoutMS=2000) as c:
                c.admin.command("ping")
            return True

        _wait_for(hello, 30, f"nx-27017 on port {self.port}", self._proc.proc, log)

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM)
            self._proc = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


# --------------------------------------------------------------------------------------------------- SMTP


class SmtpSink(_Server):
    """An aiosmtpd server that keeps every message it receives (accepts any AUTH, no TLS)."""

    def __init__(self, *, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) per message
        self._controller: Any = None
        self._cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self._cond:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._cond.notify_all()
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least `count` messages arrived; return them (raises TimeoutError otherwise)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} message(s), got {len(self.messages)} within {timeout}s")
            return list(self.messages)

    def clear(self) -> None:
        """Forget received messages (between tests)."""
        with self._cond:
            self.messages.clear()
            self.envelopes.clear()

    def _start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        def accept_any(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            return AuthResult(success=True)

        self.port = free_port(self.host)
        self._controller = Controller(
            self, hostname=self.host, port=self.port, authenticator=accept_any, auth_require_tls=False,
            ready_timeout=10,
        )  # fmt: skip
        self._controller.start()

    def _stop(self) -> None:
        if self._controller is not None:
            try:
                self._controller.stop()
            finally:
                self._controller = None


# ---------------------------------------------------------------------------------------------- Slack hook


@dataclass
class RecordedRequest:
    """One POST received by the Slack webhook sink."""

    path: str
    json: Any
    body: bytes
    headers: dict[str, str]


class SlackSink(_Server):
    """A local HTTP server standing in for a Slack incoming webhook: records POSTs, answers `ok`."""

    WEBHOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

    def __init__(self, *, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.status_code = 200  # set to e.g. 500 to simulate a failing webhook
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The full webhook URL to configure."""
        return self.base_url + self.WEBHOOK_PATH

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server hook
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                payload: Any = None
                ctype = self.headers.get("Content-Type", "")
                try:
                    if "application/x-www-form-urlencoded" in ctype:
                        payload = json.loads(parse_qs(body.decode())["payload"][0])
                    else:
                        payload = json.loads(body.decode() or "null")
                except (ValueError, KeyError):
                    payload = None
                with sink._lock:
                    sink.requests.append(RecordedRequest(self.path, payload, body, dict(self.headers.items())))
                status = sink.status_code
                reply = b"ok" if status == 200 else b"error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-sink", daemon=True
        )
        self._thread.start()

    def _stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


# ------------------------------------------------------------------------------------------- Midaz stores


@dataclass
class MidazEnv:
    """One isolated Midaz deployment on the shared servers: two PG databases, a Redis DB, two Mongo DBs."""

    revision: str
    onboarding_conninfo: str
    transaction_conninfo: str
    redis_url: str
    mongo_uri: str
    mongo_onboarding_db: str
    mongo_transaction_db: str
    onboarding_db: str = ""
    transaction_db: str = ""
    redis_db: int = 0
    conn_env: dict[str, str] = field(default_factory=dict, repr=False)

    def airflow_conn_env(self) -> dict[str, str]:
        """AIRFLOW_CONN_* and MIDAZ_MONGO_* variables that point Airflow and the checks at this env."""
        return dict(self.conn_env)


def _env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class LocalStack:
    """PostgreSQL + Redis + MongoDB-wire servers (throwaway, or external from the env) that hand out MidazEnvs.

    Usage: ``with LocalStack() as stack: env = stack.new_env("r1")``. Each server starts lazily on first
    use, so a caller that needs only Redis does not pay for PostgreSQL.
    """

    def __init__(self, *, use_env: bool = True, mongo_data_dir: str = "memory"):
        self._use_env = use_env
        self._mongo_data_dir = mongo_data_dir
        self._pg: PostgresServer | None = None
        self._redis: RedisServer | None = None
        self._mongo: MongoWireServer | None = None
        self._counter = itertools.count(1)
        self._redis_dbs: itertools.cycle[int] | None = None
        self._token = f"{os.getpid()}"
        self._envs: list[MidazEnv] = []
        self._startup: dict[str, float] = {}

    # servers, started on first use
    @property
    def pg(self) -> PostgresServer:
        if self._pg is None:
            url = os.environ.get(ENV_PG_URL) if self._use_env else None
            self._pg = (PostgresServer.from_url(url) if url else PostgresServer()).start()
            if not self._pg.external:
                self._startup["postgres"] = self._pg.startup_seconds
        return self._pg

    @property
    def redis(self) -> RedisServer:
        if self._redis is None:
            url = os.environ.get(ENV_REDIS_URL) if self._use_env else None
            self._redis = (RedisServer.from_url(url) if url else RedisServer()).start()
            if not self._redis.external:
                self._startup["redis"] = self._redis.startup_seconds
        return self._redis

    @property
    def mongo(self) -> MongoWireServer:
        if self._mongo is None:
            url = next((os.environ[v] for v in ENV_MONGO_URLS if self._use_env and os.environ.get(v)), None)
            self._mongo = (
                MongoWireServer.from_url(url) if url else MongoWireServer(data_dir=self._mongo_data_dir)
            ).start()
            if not self._mongo.external:
                self._startup["mongo"] = self._mongo.startup_seconds
        return self._mongo

    def start(self) -> LocalStack:
        """Start all three servers now (instead of lazily)."""
        _ = self.pg, self.redis, self.mongo
        return self

    def stop(self) -> None:
        """Stop every server this stack started (external servers are left alone)."""
        for srv in (self._mongo, self._redis, self._pg):
            if srv is not None:
                try:
                    srv.stop()
                except Exception:  # keep stopping the others
                    pass
        self._pg = self._redis = self._mongo = None

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_redis_db(self) -> int:
        if self._redis_dbs is None:
            count = self.redis.databases
            if self.redis.external:
                try:
                    count = int(self.redis.client().config_get("databases").get("databases", 16))
                except Exception:  # CONFIG may be disabled on managed servers
                    count = 16
            # DB 0 is left alone (an external server's default DB may hold someone's data); each use FLUSHDBs.
            self._redis_dbs = itertools.cycle(range(1, count))
        return next(self._redis_dbs)

    def new_env(
        self,
        revision: str = "r1",
        *,
        onboarding_db: str | None = None,
        transaction_db: str | None = None,
        mongo_onboarding_db: str | None = None,
        mongo_transaction_db: str | None = None,
        redis_db: int | None = None,
    ) -> MidazEnv:
        """Fresh PG databases with the Midaz schema of `revision`, an emptied Redis DB and unused Mongo names."""
        from reconciliation.demo.schema import apply_schema, create_databases

        n = next(self._counter)
        suffix = f"{self._token}_{n}"
        onboarding_db = onboarding_db or f"onboarding_{suffix}"
        transaction_db = transaction_db or f"transaction_{suffix}"
        mongo_onboarding_db = (mongo_onboarding_db or f"onboarding_{suffix}").lower()
        mongo_transaction_db = (mongo_transaction_db or f"transaction_{suffix}").lower()
        pg, redis_srv, mongo = self.pg, self.redis, self.mongo

        create_databases(pg.admin_conninfo, onboarding_db, transaction_db, drop=True)
        apply_schema(pg.conninfo(onboarding_db), pg.conninfo(transaction_db), revision)
        db = self._next_redis_db() if redis_db is None else redis_db
        with redis_srv.client(db) as r:
            r.flushdb()
        with mongo.client() as mc:
            mc.drop_database(mongo_onboarding_db)
            mc.drop_database(mongo_transaction_db)

        conn_env = {
            _env_var(config.CONN_ONBOARDING): pg.airflow_conn(onboarding_db),
            _env_var(config.CONN_TRANSACTION): pg.airflow_conn(transaction_db),
            _env_var(config.CONN_REDIS): redis_srv.airflow_conn(db),
            _env_var(config.CONN_MONGO): mongo.airflow_conn(),
            config.ENV_MONGO_ONBOARDING_DB: mongo_onboarding_db,
            config.ENV_MONGO_TRANSACTION_DB: mongo_transaction_db,
        }
        env = MidazEnv(
            revision=revision,
            onboarding_conninfo=pg.conninfo(onboarding_db),
            transaction_conninfo=pg.conninfo(transaction_db),
            redis_url=redis_srv.url_for_db(db),
            mongo_uri=mongo.uri,
            mongo_onboarding_db=mongo_onboarding_db,
            mongo_transaction_db=mongo_transaction_db,
            onboarding_db=onboarding_db,
            transaction_db=transaction_db,
            redis_db=db,
            conn_env=conn_env,
        )
        self._envs.append(env)
        return env

    def drop_env(self, env: MidazEnv) -> None:
        """Remove an env's databases (best effort; the servers keep running)."""
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.pg.admin_conninfo, autocommit=True) as conn:
                for name in (env.onboarding_db, env.transaction_db):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except Exception:
            pass
        try:
            with self.redis.client(env.redis_db) as r:
                r.flushdb()
        except Exception:
            pass
        try:
            with self.mongo.client() as mc:
                mc.drop_database(env.mongo_onboarding_db)
                mc.drop_database(env.mongo_transaction_db)
        except Exception:
            pass

    def startup_times(self) -> dict[str, float]:
        """Seconds each throwaway server took to become ready (external servers are not listed)."""
        return dict(self._startup)
