"""One writer per project folder: a lock file held by the instance that has the project open. No Qt here.

`<project>/.lumos-studio.lock` names its holder (process id, host, since when) for the message a second instance
shows. Where fcntl exists (Linux, macOS) ownership is an flock on that file: the kernel releases it when the holder
exits or is killed, so a lock left by a crash is never mistaken for a live one, even if its process id was reused.
Elsewhere (or on a file system without flock) the file is created exclusively and a leftover is stale when its
process is gone on this host.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from engine.api import ProjectError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = ".lumos-studio.lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


@dataclass
class LockOwner:
    pid: int | None = None
    host: str = ""
    since: float | None = None

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid else "another process"
        if self.host and self.host != socket.gethostname():
            who += f" on {self.host}"
        if self.since:
            who += f", since {time.strftime('%H:%M', time.localtime(self.since))}"
        return who


class ProjectLocked(ProjectError):
    """The folder is locked by another Lumos Studio (in this process or another one)."""

    def __init__(self, folder: Path, owner: LockOwner):
        super().__init__(f"{folder} is open in another Lumos Studio window ({owner.describe()}).")
        self.folder = folder
        self.owner = owner


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill would terminate it there
        try:
            import ctypes

            kernel32 = ctypes.windll.kernel32
            handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
            if not handle:
                return False
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            kernel32.CloseHandle(handle)
            return code.value == 259  # STILL_ACTIVE
        except Exception:
            return True  # cannot tell: treat it as alive (the user can still open a copy)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class ProjectLock:
    """acquire() or raise ProjectLocked; release() when the project is closed. Not re-entrant: a second lock on the
    same folder fails even in the same process (two windows on one project would lose takes just the same)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None  # flock mode: the open, locked file
        self._token: str | None = None  # exclusive-file mode: what our lock file says
        self.info = {}

    @property
    def held(self) -> bool:
        return self._fd is not None or self._token is not None

    # -- acquire / release --
    def acquire(self) -> "ProjectLock":
        if self.held:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ProjectError(f"cannot use the folder {self.folder}: {reason}") from None
        self.info = {"app": "Lumos Studio", "pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                     "token": uuid.uuid4().hex}
        if fcntl is not None:
            try:
                self._acquire_flock()
                return self
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    raise ProjectError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
                log.info("no flock on %s (%s); using an exclusive lock file", self.folder, exc)
        self._acquire_exclusive()
        return self

    def _acquire_flock(self) -> None:
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ProjectLocked(self.folder, self.read_owner(self.folder)) from None
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its holder removed it while we opened it: try again on the new file
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(self.info).encode())
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            return
        raise ProjectError(f"cannot lock {self.folder}: its lock file keeps changing")

    def _acquire_exclusive(self) -> None:
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self.read_owner(self.folder)
                stale = owner.pid is not None and owner.host == socket.gethostname() and not _pid_alive(owner.pid)
                if not stale:
                    raise ProjectLocked(self.folder, owner) from None
                log.info("removing the stale lock of process %s in %s", owner.pid, self.folder)
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise ProjectError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
                continue
            except OSError as exc:
                raise ProjectError(f"cannot lock {self.folder}: {exc.strerror or exc}") from None
            try:
                os.write(fd, json.dumps(self.info).encode())
            finally:
                os.close(fd)
            self._token = self.info["token"]
            return
        raise ProjectLocked(self.folder, self.read_owner(self.folder))

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    os.unlink(self.path)  # while still locked: a waiting opener then sees a new file
            except OSError:
                pass
            os.close(fd)
        elif self._token is not None:
            token, self._token = self._token, None
            try:
                if json.loads(self.path.read_text(encoding="utf-8")).get("token") == token:
                    os.unlink(self.path)
            except (OSError, ValueError, AttributeError):
                pass

    def __del__(self):  # a lock object dropped without release(): let the kernel lock go, leave the file
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- who holds it --
    @staticmethod
    def read_owner(folder: str | Path) -> LockOwner:
        try:
            with open(Path(folder) / LOCK_FILE, "rb") as fh:
                data = json.loads(fh.read(4096).decode("utf-8"))
        except (OSError, ValueError):
            return LockOwner()
        if not isinstance(data, dict):
            return LockOwner()
        pid, host, since = data.get("pid"), data.get("host"), data.get("since")
        return LockOwner(pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
                         host=host[:255] if isinstance(host, str) else "",
                         since=float(since) if isinstance(since, (int, float)) and not isinstance(since, bool)
                         and 0 < since < 1e11 else None)
