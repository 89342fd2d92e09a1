"""The secret store: where token and API key values live, and nowhere else.

Owns ``SecretStore`` and its backends, secret references (``secret:NAME``) and the
migration of plaintext values out of ``botdesk.toml``.

Backends, chosen once by ``SecretStore.open``:

* ``keyring``: the OS credential store (Secret Service, macOS Keychain, Windows
  Credential Locker) through the ``keyring`` library. Refused when the backend is the
  fail/null backend, stores plaintext (keyrings.alt, anything named "plaintext"),
  declares itself insecure (``insecure = True`` or ``secure = False``), has priority
  <= 0 or fails a read probe.
* ``encrypted-file``: ``<home>/secrets.enc``, a Fernet token over a JSON document,
  mode 0600, replaced atomically. Its key comes from ``BOTDESK_MASTER_KEY``, an
  existing ``<home>/master.key``, the OS keyring, or else a new ``master.key`` (0600).
  Used when no keyring is usable, when ``secrets.enc`` already exists (so secrets never
  silently move) or when ``BOTDESK_SECRETS_BACKEND=file``.
* ``BOTDESK_SECRET_<NAME>`` environment variables: a read-only fallback on top of
  either backend (name upper-cased, ``.`` and ``-`` become ``_``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as _stdlib_secrets
import stat
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.fernet import Fernet, InvalidToken

from botdesk.errors import ConfigError, SecretError, SecretNotFound

try:  # POSIX advisory locks keep `botdesk secrets set` and a running service apart.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SECRET_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_NAME = re.compile(rf"\A{SECRET_NAME_RE}\Z")

REFERENCE_PREFIX = "secret:"
ENV_PREFIX = "BOTDESK_SECRET_"
MASTER_KEY_ENV = "BOTDESK_MASTER_KEY"
KEYRING_ENV = "BOTDESK_KEYRING"
BACKEND_ENV = "BOTDESK_SECRETS_BACKEND"
SECRETS_FILE = "secrets.enc"
KEY_FILE = "master.key"
LOCK_FILE = "secrets.lock"
DEFAULT_SERVICE = "botdesk"

# Keyring usernames that cannot collide with secret names (those start alphanumeric).
_INDEX_ENTRY = "__botdesk_index__"
_MASTER_KEY_ENTRY = "__botdesk_master_key__"
_PROBE_ENTRY = "__botdesk_probe__"
_FILE_FORMAT = "botdesk-secrets"
_OFF_VALUES = frozenset({"off", "0", "false", "no", "disabled"})

FILE_KEY_PROTECTION = "Fernet; key in a 0600 file: secrets are as safe as that file's permissions"
ENV_KEY_PROTECTION = (
    "Fernet; key from BOTDESK_MASTER_KEY: secrets are as safe as the environment "
    "(process, service unit, CI settings) that holds the key"
)


@dataclass(frozen=True)
class BackendInfo:
    """What ``doctor`` shows: the backend in use and the protection actually in force."""

    name: str
    protection: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretEntry:
    name: str
    source: str  # backend name, or "env:BOTDESK_SECRET_X"


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SecretError(
            f"invalid secret name {name!r}: use letters, digits, '_', '.' or '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def env_var_for(name: str) -> str:
    """``bots.shop.token`` -> ``BOTDESK_SECRET_BOTS_SHOP_TOKEN``."""
    return ENV_PREFIX + validate_name(name).upper().replace(".", "_").replace("-", "_")


def is_secret_reference(value: str) -> bool:
    """True for ``secret:NAME`` with a valid NAME."""
    return (
        isinstance(value, str)
        and value.startswith(REFERENCE_PREFIX)
        and bool(_NAME.match(value[len(REFERENCE_PREFIX) :]))
    )


def reference_name(value: str) -> str:
    if not is_secret_reference(value):
        raise SecretError(f"not a secret reference (expected secret:NAME): {value[:20]!r}...")
    return value[len(REFERENCE_PREFIX) :]


def generate_master_key() -> str:
    """A new key suitable for ``BOTDESK_MASTER_KEY``."""
    return Fernet.generate_key().decode("ascii")


# --------------------------------------------------------------------------- files


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse a directory fsync
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_private_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically (tmp + fsync + rename) with ``mode``.

    The temporary file is created with the final mode, so the bytes are never readable
    by others, not even for the moment between write and chmod.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_stdlib_secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away; the mode is the contract
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_private_file(path: Path, *, what: str) -> bytes:
    try:
        # O_NOFOLLOW: a key file swapped for a symlink is refused, not followed.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretError(f"cannot open {what} {path}: {exc.strerror or exc}") from exc
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise SecretError(
                f"{what} {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})"
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


# --------------------------------------------------------------------------- keyring


def keyring_refusal(backend: Any, *, service: str = DEFAULT_SERVICE) -> str | None:
    """Why ``backend`` is not usable for secrets, or None if it is."""
    cls = type(backend)
    qualname = f"{cls.__module__}.{cls.__name__}"
    from keyring.backends import fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return f"no OS keyring is available ({qualname})"
    lowered = qualname.lower()
    if cls.__module__.startswith("keyrings.alt") or "plaintext" in lowered:
        return f"{qualname} stores secrets without OS protection (plaintext or home-made)"
    if getattr(backend, "insecure", False) is True or getattr(backend, "secure", True) is False:
        return f"{qualname} declares itself insecure"
    try:
        priority = float(backend.priority)
    except Exception as exc:
        return f"{qualname} is not viable: {type(exc).__name__}: {exc}"
    if priority <= 0:
        return f"{qualname} has priority {priority:g}; keyring deems it unsuitable"
    try:
        backend.get_password(service, _PROBE_ENTRY)
    except Exception as exc:
        return f"{qualname} failed a read probe: {type(exc).__name__}: {exc}"
    return None


def _pick_keyring(
    requested: object | None, env: Mapping[str, str], service: str
) -> tuple[Any, str]:
    """The usable keyring backend (or None) and, when none, the reason."""
    if requested is None:
        return None, "OS keyring disabled by the caller"
    if env.get(KEYRING_ENV, "").strip().lower() in _OFF_VALUES:
        return None, f"OS keyring disabled by {KEYRING_ENV}={env[KEYRING_ENV]}"
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.backends.chainer import ChainerBackend

    if isinstance(requested, str):
        if requested != "auto":
            raise ValueError(f"keyring_backend must be 'auto', None or a backend: {requested!r}")
        try:
            candidate: Any = keyring.get_keyring()
        except Exception as exc:
            return None, f"keyring could not load a backend: {type(exc).__name__}: {exc}"
    elif isinstance(requested, KeyringBackend):
        candidate = requested
    else:
        raise TypeError(f"keyring_backend must be a keyring backend, got {type(requested)!r}")

    # A chainer writes to its first willing backend; pick that backend explicitly so the
    # plaintext check applies to the one that will actually hold the secrets.
    candidates = list(candidate.backends) if isinstance(candidate, ChainerBackend) else [candidate]
    reasons = []
    for backend in candidates:
        reason = keyring_refusal(backend, service=service)
        if reason is None:
            return backend, ""
        reasons.append(reason)
    return None, "; ".join(reasons) or "no OS keyring is available (empty chain)"


def _keyring_call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    from keyring.errors import KeyringError

    try:
        return fn(*args)
    except KeyringError as exc:
        raise SecretError(f"OS keyring failed to {what}: {type(exc).__name__}: {exc}") from exc


class _KeyringStore:
    """Secrets as keyring entries; keyring cannot list, so an index entry keeps the names.

    The index is read-modify-write, so writers take the home's lock file like the
    encrypted file does; otherwise two concurrent ``set`` calls could drop a name.
    """

    def __init__(self, backend: Any, service: str, home: Path) -> None:
        self._kr = backend
        self._service = service
        self._home = home
        cls = type(backend)
        self.info = BackendInfo(
            "keyring",
            f"OS keyring ({cls.__module__}.{cls.__name__}): protected by the operating "
            "system's credential store and your login",
        )

    def _index(self) -> list[str]:
        raw = _keyring_call("read", self._kr.get_password, self._service, _INDEX_ENTRY)
        if not raw:
            return []
        try:
            names = json.loads(raw)
        except ValueError:
            return []
        return [n for n in names if isinstance(n, str) and _NAME.match(n)]

    def _write_index(self, names: list[str]) -> None:
        data = json.dumps(sorted(set(names)))
        _keyring_call("write", self._kr.set_password, self._service, _INDEX_ENTRY, data)

    def get(self, name: str) -> str | None:
        value = _keyring_call("read", self._kr.get_password, self._service, name)
        return value if isinstance(value, str) else None

    def set(self, name: str, value: str) -> None:
        with _locked(self._home):
            _keyring_call("write", self._kr.set_password, self._service, name, value)
            index = self._index()
            if name not in index:
                self._write_index([*index, name])

    def delete(self, name: str) -> bool:
        with _locked(self._home):
            if self.get(name) is None:
                return False
            _keyring_call("delete", self._kr.delete_password, self._service, name)
            self._write_index([n for n in self._index() if n != name])
            return True

    def names(self) -> list[str]:
        return sorted(n for n in self._index() if self.get(n) is not None)

    def key_material(self) -> list[str]:
        return []


# --------------------------------------------------------------------------- encrypted file


class _FileStore:
    """All secrets in one Fernet token at ``<home>/secrets.enc``; re-read on every call so
    a CLI ``set`` is seen by a running service without restart."""

    def __init__(
        self,
        home: Path,
        *,
        env_key: str | None,
        keyring: Any,
        service: str,
        notes: tuple[str, ...],
    ) -> None:
        self.home = home
        self.path = home / SECRETS_FILE
        self.key_path = home / KEY_FILE
        self._keyring = keyring
        self._service = service
        self._fernet: Fernet | None = None
        self._key: str | None = None
        if env_key is not None:
            self._source = "env"
            self._use_key(env_key, origin=MASTER_KEY_ENV)
            protection = ENV_KEY_PROTECTION
        elif self.key_path.exists() or keyring is None:
            self._source = "file"
            protection = FILE_KEY_PROTECTION
        else:
            self._source = "keyring"
            cls = type(keyring)
            protection = (
                f"Fernet; key in the OS keyring ({cls.__module__}.{cls.__name__}): "
                "secrets are as safe as your keyring"
            )
        self.info = BackendInfo("encrypted-file", protection, notes)

    def _use_key(self, key: str, *, origin: str) -> None:
        try:
            self._fernet = Fernet(key.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise SecretError(
                f"{origin} is not a valid Fernet key (44 url-safe base64 characters)"
            ) from exc
        self._key = key.strip()

    def _cipher(self, *, create: bool) -> Fernet | None:
        if self._fernet is not None:
            return self._fernet
        if self._source == "keyring":
            key = _keyring_call(
                "read", self._keyring.get_password, self._service, _MASTER_KEY_ENTRY
            )
            if not key and create:
                key = generate_master_key()
                _keyring_call(
                    "write", self._keyring.set_password, self._service, _MASTER_KEY_ENTRY, key
                )
            if key:
                self._use_key(key, origin="the master key in the OS keyring")
        elif self.key_path.exists() or self.key_path.is_symlink():
            raw = _read_private_file(self.key_path, what="key file")
            self._use_key(raw.decode("ascii", "replace"), origin=str(self.key_path))
        elif create:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(
                    self.key_path,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                    0o600,
                )
            except FileExistsError:  # another process won the race; use its key
                return self._cipher(create=False)
            key = generate_master_key()
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, key.encode("ascii") + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(self.home)
            self._use_key(key, origin=str(self.key_path))
        return self._fernet

    def _key_hint(self) -> str:
        return {
            "env": f"wrong {MASTER_KEY_ENV} or a corrupt file",
            "file": f"{self.key_path} does not match it or the file is corrupt",
            "keyring": "the key in the OS keyring does not match it or the file is corrupt",
        }[self._source]

    def load(self) -> dict[str, str]:
        try:
            token = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        cipher = self._cipher(create=False)
        if cipher is None:
            raise SecretError(
                f"{self.path} exists but its key is missing: set {MASTER_KEY_ENV} "
                f"or restore {self.key_path}"
            )
        try:
            doc = json.loads(cipher.decrypt(token))
        except InvalidToken as exc:
            raise SecretError(f"cannot decrypt {self.path}: {self._key_hint()}") from exc
        except ValueError as exc:
            raise SecretError(f"{self.path} decrypts but is not a secrets document") from exc
        secrets_ = doc.get("secrets") if isinstance(doc, dict) else None
        if not isinstance(secrets_, dict) or doc.get("format") != _FILE_FORMAT:
            raise SecretError(f"{self.path} decrypts but is not a botdesk secrets document")
        return {k: v for k, v in secrets_.items() if isinstance(k, str) and isinstance(v, str)}

    def _save(self, data: dict[str, str]) -> None:
        cipher = self._cipher(create=True)
        assert cipher is not None
        doc = {"format": _FILE_FORMAT, "version": 1, "secrets": dict(sorted(data.items()))}
        try:
            write_private_file(self.path, cipher.encrypt(json.dumps(doc).encode("utf-8")))
        except OSError as exc:
            raise SecretError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def get(self, name: str) -> str | None:
        return self.load().get(name)

    def set(self, name: str, value: str) -> None:
        with _locked(self.home):
            data = self.load()
            data[name] = value
            self._save(data)

    def delete(self, name: str) -> bool:
        with _locked(self.home):
            data = self.load()
            if name not in data:
                return False
            del data[name]
            self._save(data)
            return True

    def names(self) -> list[str]:
        return sorted(self.load())

    def key_material(self) -> list[str]:
        return [self._key] if self._key else []


# --------------------------------------------------------------------------- the store

_Backend = _KeyringStore | _FileStore


class SecretStore:
    """Named secret values: one writable backend plus read-only environment variables."""

    def __init__(
        self,
        backend: _Backend,
        *,
        env: Mapping[str, str],
        register: Callable[[str], None] | None = None,
    ) -> None:
        self._backend = backend
        self._env = env
        self._register = register

    @classmethod
    def open(
        cls,
        home: Path,
        *,
        env: Mapping[str, str] = os.environ,
        keyring_backend: object | None = "auto",
        service: str = DEFAULT_SERVICE,
        register: Callable[[str], None] | None = None,
    ) -> SecretStore:
        """Choose the backend (see the module docstring) and check it can be read.

        ``register`` (typically ``REDACTOR.add``) receives every secret value the store
        holds or hands out, and the master key, so logs can never show them.
        """
        home = Path(home)
        choice = env.get(BACKEND_ENV, "auto").strip().lower() or "auto"
        if choice not in ("auto", "keyring", "file"):
            raise ConfigError(f"{BACKEND_ENV} must be auto, keyring or file, not {choice!r}")
        keyring, reason = _pick_keyring(keyring_backend, env, service)
        backend: _Backend
        if choice == "keyring":
            if keyring is None:
                raise SecretError(f"{BACKEND_ENV}=keyring but the OS keyring is unusable: {reason}")
            backend = _KeyringStore(keyring, service, home)
        elif choice == "auto" and keyring is not None and not (home / SECRETS_FILE).exists():
            backend = _KeyringStore(keyring, service, home)
        else:
            notes: list[str] = []
            if keyring is None:
                notes.append(f"OS keyring not used: {reason}")
            elif choice == "auto":
                notes.append(f"{home / SECRETS_FILE} exists, so it stays the store")
            env_key = env.get(MASTER_KEY_ENV) or None
            backend = _FileStore(
                home, env_key=env_key, keyring=keyring, service=service, notes=tuple(notes)
            )
        store = cls(backend, env=env, register=register)
        # Fail now, with one line, rather than at the first send: wrong key, corrupt file.
        values = store.values()
        if register is not None:
            for value in values:
                register(value)
        return store

    @property
    def backend(self) -> BackendInfo:
        return self._backend.info

    def _seen(self, value: str) -> str:
        if self._register is not None:
            self._register(value)
        return value

    def get(self, name: str) -> str:
        validate_name(name)
        value = self._backend.get(name)
        if value is None:
            value = self._env.get(env_var_for(name)) or None
        if value is None:
            raise SecretNotFound(name)
        return self._seen(value)

    def resolve(self, value: str) -> str:
        """The secret behind a ``secret:NAME`` reference; any other value unchanged."""
        return self.get(reference_name(value)) if is_secret_reference(value) else value

    def set(self, name: str, value: str) -> None:
        validate_name(name)
        if not isinstance(value, str) or not value.strip():
            raise SecretError(f"refusing to store an empty value for secret '{name}'")
        self._seen(value)
        self._backend.set(name, value)
        for key in self._backend.key_material():  # a first set may have created the key
            self._seen(key)

    def delete(self, name: str) -> None:
        validate_name(name)
        if self._backend.delete(name):
            return
        var = env_var_for(name)
        if self._env.get(var):
            raise SecretError(
                f"secret '{name}' comes from the environment variable {var}; unset it there"
            )
        raise SecretNotFound(name)

    def _env_entries(self, shadowed: frozenset[str]) -> list[SecretEntry]:
        out = []
        for var, value in self._env.items():
            if not var.startswith(ENV_PREFIX) or not value or var in shadowed:
                continue
            name = var[len(ENV_PREFIX) :]
            if _NAME.match(name):
                out.append(SecretEntry(name, f"env:{var}"))
        return out

    def entries(self) -> list[SecretEntry]:
        """Every name with where it comes from (for ``secrets list``); no values."""
        own = self._backend.names()
        entries = [SecretEntry(n, self._backend.info.name) for n in own]
        entries += self._env_entries(frozenset(env_var_for(n) for n in own))
        return sorted(entries, key=lambda e: e.name)

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def values(self) -> list[str]:
        """Every value that must never be logged: secrets (store and env) and the master key."""
        values = [v for n in self._backend.names() if (v := self._backend.get(n))]
        values += [self._env[e.source[4:]] for e in self._env_entries(frozenset())]
        values += self._backend.key_material()
        if self._env.get(MASTER_KEY_ENV):
            values.append(self._env[MASTER_KEY_ENV])
        return values


# --------------------------------------------------------------------------- migration

_SECRET_KEYS = frozenset({"token", "api_key", "apikey", "password", "secret"})
_SECRET_SUFFIXES = ("_token", "_key", "_password", "_secret")


def is_secret_key(key: str) -> bool:
    """Whether a TOML key's value is a secret by its name."""
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES)


def _plaintext_secrets(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, str(key))
            if isinstance(value, str):
                if is_secret_key(key) and value.strip() and not value.startswith(REFERENCE_PREFIX):
                    yield here, value
            else:
                yield from _plaintext_secrets(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _plaintext_secrets(item, (*path, str(i)))


def _name_for(path: tuple[str, ...]) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", ".".join(path))
    if not name[:1].isalnum():
        name = "s" + name
    return validate_name(name[:128])


def _replaced(node: Any, path: tuple[str, ...], refs: dict[tuple[str, ...], str]) -> Any:
    if isinstance(node, dict):
        return {k: refs.get((*path, k)) or _replaced(v, (*path, k), refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_replaced(v, (*path, str(i)), refs) for i, v in enumerate(node)]
    return node


_ASSIGNMENT = re.compile(
    r"""^(?P<head>\s*[A-Za-z0-9_\-."' ]+?\s*=\s*)"""
    r"""(?P<lit>"(?:[^"\\\n]|\\.)*"|'[^'\n]*')(?P<tail>\s*(?:\#.*)?)$"""
)


def _rewrite_keeping_comments(
    text: str, found: dict[tuple[str, ...], str], names: dict[tuple[str, ...], str], want: Any
) -> str | None:
    """Swap the string literals in place so comments and layout survive; None if unsure.

    The result is only accepted if it parses to exactly the document tomli_w would write,
    so any layout this line-based pass misreads (inline tables, multi-line strings, a
    value repeated under an ordinary key) falls back to a full rewrite.
    """
    by_value: dict[str, list[str]] = {}
    for path, value in found.items():
        if names[path] not in by_value.setdefault(value, []):
            by_value[value].append(names[path])
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        match = _ASSIGNMENT.match(body)
        if not match:
            continue
        try:
            value = tomllib.loads("v = " + match["lit"])["v"]
        except tomllib.TOMLDecodeError:
            continue
        candidates = by_value.get(value)
        key = match["head"].rstrip().rstrip("=").strip().split(".")[-1].strip().strip("\"'")
        if not candidates or not is_secret_key(key):
            continue
        if len(candidates) > 1:
            return None
        (name,) = candidates
        lines[i] = f'{match["head"]}"{REFERENCE_PREFIX}{name}"{match["tail"]}' + line[len(body) :]
    new_text = "".join(lines)
    try:
        return new_text if tomllib.loads(new_text) == want else None
    except tomllib.TOMLDecodeError:
        return None


def _backup(config_path: Path, data: bytes) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        candidate = config_path.with_name(
            f"{config_path.name}.bak-{stamp}" + (f"-{n}" if n else "")
        )
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return candidate
    raise SecretError(f"cannot create a backup of {config_path}: too many backups this second")


def migrate_plaintext(config_path: Path, store: SecretStore) -> list[str]:
    """Move plaintext secret values out of ``config_path`` into ``store``.

    Order matters for crash safety: backup (0600), then the store, then the atomic
    rewrite. A crash at any point leaves either the old file (and a rerun stores the same
    values again) or the new one. Returns the names moved; a second run moves nothing
    and writes nothing.
    """
    config_path = Path(config_path)
    try:
        raw = config_path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=str(config_path)) from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(config_path)) from exc

    found = dict(_plaintext_secrets(doc, ()))
    if not found:
        return []
    names = {path: _name_for(path) for path in found}
    by_name: dict[str, str] = {}
    for path, name in names.items():
        if by_name.setdefault(name, found[path]) != found[path]:
            raise SecretError(f"two keys in {config_path} map to the secret name '{name}'")
    for name, value in by_name.items():
        existing = store._backend.get(name)
        if existing is not None and existing != value:
            raise SecretError(
                f"secret '{name}' already holds a different value; delete it first "
                f"or edit {config_path} by hand"
            )

    _backup(config_path, raw)
    for name, value in by_name.items():
        store.set(name, value)

    refs = {path: REFERENCE_PREFIX + name for path, name in names.items()}
    new_doc = _replaced(doc, (), refs)
    text = _rewrite_keeping_comments(raw.decode("utf-8"), found, names, new_doc)
    if text is None:
        text = tomli_w.dumps(new_doc)
    mode = stat.S_IMODE(config_path.stat().st_mode)
    write_private_file(config_path, text.encode("utf-8"), mode=mode)
    return sorted(by_name)
