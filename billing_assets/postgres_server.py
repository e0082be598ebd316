"""A PostgreSQL server on this machine for the production profile's Dagster instance.

The production script and the tests start one the same way: a data folder initialised once by
``initdb``, a free local port, TCP on 127.0.0.1 only, password authentication, and the
database the instance uses. PostgreSQL refuses to run as root, so as root the server runs as
the ``postgres`` user the distribution's packages create (its data folder owned by it).
The connection reaches Dagster through ``DAGSTER_PG_*`` variables, never through a file.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from billing_assets.local_processes import stop_process_group, wait_until

#: The variables the production instance configuration (``dagster-production.yaml``) reads.
PG_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
#: Where Debian's packages put the server's programs (one folder per major version).
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
#: The unprivileged account the server runs as when started by root.
SERVER_USER = "postgres"


@dataclass(frozen=True)
class PostgresConnection:
    """Where the Dagster instance's database is, and the credentials to reach it."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def environment(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables for this connection."""
        values = (self.host, str(self.port), self.user, self.password, self.database)
        return dict(zip(PG_VARIABLES, values, strict=True))

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> "PostgresConnection | None":
        """The connection the ``DAGSTER_PG_*`` variables name (None when ``DAGSTER_PG_HOST`` is unset)."""
        if not environ.get("DAGSTER_PG_HOST"):
            return None
        missing = [name for name in PG_VARIABLES if name != "DAGSTER_PG_PASSWORD" and not environ.get(name)]
        if missing:
            raise ValueError(f"DAGSTER_PG_HOST is set, so these must be too: {', '.join(missing)}")
        return cls(
            host=environ["DAGSTER_PG_HOST"],
            port=int(environ["DAGSTER_PG_PORT"]),
            user=environ["DAGSTER_PG_USER"],
            password=environ.get("DAGSTER_PG_PASSWORD", ""),
            database=environ["DAGSTER_PG_DB"],
        )


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    versions = sorted(DEBIAN_BINARIES.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True)
    if not versions:
        raise FileNotFoundError(
            "PostgreSQL's server programs (initdb, postgres) were not found on PATH or under /usr/lib/postgresql: "
            "install them (Debian: apt-get install postgresql) or point DAGSTER_PG_* at an existing server"
        )
    return versions[0].parent


def _account() -> tuple[int, int] | None:
    """The uid and gid the server runs as: ours, or the ``postgres`` account's when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PermissionError(
            f"PostgreSQL does not run as root and there is no {SERVER_USER!r} account: run as another user"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _check_reachable(folder: Path, uid: int) -> None:
    """Fail in one line when the server's account cannot reach ``folder`` (a parent closed to others)."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat()
        if mode.st_uid != uid and not mode.st_mode & 0o001:
            raise PermissionError(
                f"the {SERVER_USER!r} account cannot enter {parent} (mode {oct(mode.st_mode & 0o777)}): "
                "put the PostgreSQL data folder where it can"
            )


def initialise(data_dir: Path, connection: PostgresConnection) -> None:
    """Create the server's data folder with ``connection``'s superuser and password (once: a folder in use is kept)."""
    if (data_dir / "PG_VERSION").exists():
        return
    account = _account()
    data_dir.mkdir(parents=True, exist_ok=True)
    if account is not None:
        _check_reachable(data_dir.parent, account[0])
        os.chown(data_dir, *account)
    data_dir.chmod(0o700)
    # The password travels in a file readable by the server's account only, removed at once.
    with tempfile.NamedTemporaryFile("w", dir=data_dir.parent, delete=False) as pwfile:
        pwfile.write(connection.password + "\n")
    try:
        if account is not None:
            os.chown(pwfile.name, *account)
        subprocess.run(
            [
                str(server_binaries() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                connection.user,
                f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            user=account[0] if account else None,
            group=account[1] if account else None,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace').strip()}") from exc
    finally:
        os.unlink(pwfile.name)


def start(data_dir: Path, connection: PostgresConnection, log: Path) -> subprocess.Popen:
    """Start the server on 127.0.0.1:``connection.port`` in its own process group; return once it takes queries.

    The database ``connection.database`` is created when missing.
    """
    initialise(data_dir, connection)
    account = _account()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                str(server_binaries() / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(connection.port),
                "-c",
                "listen_addresses=127.0.0.1",
                # The socket lives in the data folder: /var/run/postgresql may not exist or be ours.
                "-c",
                f"unix_socket_directories={data_dir}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=account[0] if account else None,
            group=account[1] if account else None,
        )
    try:
        wait_until(lambda: _answers(connection, "postgres"), f"PostgreSQL on port {connection.port} answered", 60, proc)
        create_database(connection)
    except BaseException:
        stop(proc)
        raise
    return proc


def _answers(connection: PostgresConnection, database: str) -> bool:
    """Whether the server takes a query on ``database``."""
    import psycopg2

    try:
        psycopg2.connect(**_connect_args(connection, database), connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def _connect_args(connection: PostgresConnection, database: str) -> dict:
    return {
        "host": connection.host,
        "port": connection.port,
        "user": connection.user,
        "password": connection.password,
        "dbname": database,
    }


def create_database(connection: PostgresConnection) -> None:
    """Create ``connection.database`` unless it exists."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(**_connect_args(connection, "postgres"))
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (connection.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(connection.database)))
    finally:
        conn.close()


def stop(proc: subprocess.Popen) -> None:
    """Stop the server (SIGTERM is PostgreSQL's smart shutdown; SIGKILL after 20 s)."""
    stop_process_group(proc)
