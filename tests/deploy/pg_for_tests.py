"""A real PostgreSQL server for the deployment tests (the Python twin of
tests/support/postgres_server.cc): Debian's postgresql binaries, a cluster initialised into a
temporary directory and started on a free loopback port with TLS (a self-signed certificate made
with the openssl CLI, so URIs with sslmode=require connect as in a cluster), the superuser
"postgres" trusted on loopback and every other role authenticated by password (scram-sha-256).
initdb and postgres refuse to run as root: as root they run as ATTATTR_PG_USER (default nobody).

    pg = start()            # None, with why_not(), where it cannot start
    pg.create_role("u", "secret"); pg.create_database("db", owner="u")
    pg.sql("db", "SELECT 1"); pg.stop()
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def _bin_dir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[4]))
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "psql")):
            return d
    return None


def why_not():
    """Why no server can start here, or "" when one can."""
    if _bin_dir() is None:
        return "no PostgreSQL server binaries (scripts/setup.sh installs Debian's postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(os.environ.get("ATTATTR_PG_USER", "nobody"))
        except KeyError:
            return "running as root and no unprivileged user to run PostgreSQL as"
    return ""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.bin = _bin_dir()
        self.dir = tempfile.mkdtemp(prefix="attattr-deploy-pg-")
        self.port = _free_port()
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam(os.environ.get("ATTATTR_PG_USER", "nobody"))
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def _as_owner(self):
        if self.user is not None:
            os.setgroups([])
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def _run(self, argv, **kw):
        return subprocess.run(argv, preexec_fn=self._as_owner, capture_output=True, text=True, **kw)

    def start(self):
        data = os.path.join(self.dir, "data")
        r = self._run([os.path.join(self.bin, "initdb"), "-D", data, "-U", "postgres", "-A",
                       "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("initdb: " + r.stderr)
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host all postgres 127.0.0.1/32 trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        key, crt = os.path.join(data, "server.key"), os.path.join(data, "server.crt")
        r = self._run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                       "-subj", "/CN=localhost", "-keyout", key, "-out", crt])
        if r.returncode != 0:
            raise RuntimeError("openssl: " + r.stderr)
        os.chmod(key, 0o600)
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", data, "-k", self.dir, "-h", "127.0.0.1",
             "-p", str(self.port), "-c", "fsync=off", "-c", "ssl=on", "-c",
             "ssl_cert_file=" + crt, "-c", "ssl_key_file=" + key],
            preexec_fn=self._as_owner, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "postgres.log"), "w"))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + self.log())
            if self._psql("postgres", "SELECT 1", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("postgres did not accept connections: " + self.log())

    def log(self):
        with open(os.path.join(self.dir, "postgres.log")) as f:
            return f.read()[-3000:]

    def _psql(self, database, statement, check=True):
        r = subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", database, "-tA", "-v", "ON_ERROR_STOP=1", "-c",
                            statement], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("psql %s: %s" % (statement, r.stderr))
        return r

    def sql(self, database, statement):
        """The first column of the first row ("" when none)."""
        out = self._psql(database, statement).stdout.strip().splitlines()
        return out[0] if out else ""

    def create_role(self, role, password):
        self._psql("postgres", "CREATE ROLE \"%s\" LOGIN PASSWORD '%s'" % (role, password))

    def create_database(self, name, owner):
        self._psql("postgres", "CREATE DATABASE \"%s\" OWNER \"%s\"" % (name, owner))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def start():
    """A started server, or None where why_not() says it cannot start."""
    if why_not():
        return None
    pg = Postgres()
    try:
        return pg.start()
    except Exception:
        pg.stop()
        raise
