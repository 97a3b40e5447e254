"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temporary folder.

It listens on 127.0.0.1 at a free port (and a unix socket in the same folder), requires a password
(scram-sha-256) and is removed on ``stop``. As root, the server runs as the ``postgres`` user (PostgreSQL
refuses to run as root). Not used by the pipeline itself.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "genre"


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<v>/bin`` holding initdb and pg_ctl (or ``$GENRE_PG_BIN``), else None."""
    candidates = [os.environ["GENRE_PG_BIN"]] if os.environ.get("GENRE_PG_BIN") else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for c in candidates:
        if (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running scratch server: ``url`` (no password in it), ``password``, ``root`` (its folder)."""

    root: Path
    port: int
    password: str
    bin_dir: Path
    prefix: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the server (fast mode) and delete its folder."""
        subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_pg_server(fsync: bool = False, timeout_s: float = 60.0) -> PgServer:
    """initdb + start a server in a new temporary folder; raises RuntimeError (with the log) if it fails.

    ``fsync=False`` is for tests (a process kill, not a power cut, is what they simulate); benchmarks pass True.
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin; "
                           "set GENRE_PG_BIN")
    root = Path(tempfile.mkdtemp(prefix="genre-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    password = os.urandom(12).hex()
    pwfile = root / "pw"
    pwfile.write_text(password)
    if prefix:
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    data, log = root / "data", root / "server.log"
    steps = [
        [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(int(timeout_s)), "-o",
         f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
         f"-c fsync={'on' if fsync else 'off'} -c shared_buffers=64MB -c max_connections=30", "start"],
    ]
    for cmd in steps:
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=timeout_s + 30, check=False)
        if proc.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {proc.stderr}{proc.stdout}{server_log}")
    pwfile.unlink()
    return PgServer(root=root, port=port, password=password, bin_dir=bin_dir, prefix=prefix)
