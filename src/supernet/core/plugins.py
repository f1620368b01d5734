"""User code that registers spaces, ops, blocks or datasets: `--import MODULE_OR_FILE` and the config's `imports:`.

Importing runs code by design (like the package itself, it is trusted). Checkpoints record the imports of the
run that made them (`describe`), and loading one names the recorded imports when something it needs is not
registered (`missing_import_hint`); a recorded import is never run automatically.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

from supernet.core.errors import ConfigError


def is_file_spec(spec: str) -> bool:
    """A spec is a file when it ends in .py or names a path (a `/`); otherwise a module name."""
    return spec.endswith(".py") or "/" in spec


def canonical(spec: str) -> str:
    """The form a checkpoint records: a module name as given, a file as its absolute path."""
    spec = spec.strip()
    return str(Path(spec).expanduser().resolve()) if is_file_spec(spec) else spec


def import_one(spec: str) -> ModuleType:
    """Import a module by name or run a Python file (once per process); a failure is one line."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--import / imports: expected a module name or a .py file, got {spec!r}")
    spec = canonical(spec)
    if not is_file_spec(spec):
        return _import_module(spec)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--import {spec}: no such file; give a .py file or an importable module name")
    name = "supernet_user_" + path.stem.replace("-", "_") + "_" + hashlib.sha256(spec.encode()).hexdigest()[:8]
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(f"--import {spec}: cannot load it as Python source")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling (DataLoader workers) look it up
    try:
        loader_spec.loader.exec_module(module)
    except SystemExit as e:  # sys.exit() in user code must not end the command as if it had run
        del sys.modules[name]
        raise ConfigError(f"--import {spec} failed: {_where(e, path)}{_exit_text(e)}") from None
    except Exception as e:  # noqa: BLE001 - user code: any failure becomes one line naming the file
        del sys.modules[name]
        raise ConfigError(f"--import {spec} failed: {_where(e, path)}{type(e).__name__}: {_first_line(e)}") from None
    return module


def import_all(specs: Iterable[str]) -> list[str]:
    """Import every spec in order; returns their canonical forms, each once."""
    done: list[str] = []
    for spec in specs:
        import_one(spec)
        if canonical(spec) not in done:
            done.append(canonical(spec))
    return done


def describe(specs: Sequence[str]) -> list[str]:
    """The import list a checkpoint records."""
    out: list[str] = []
    for spec in specs:
        if canonical(spec) not in out:
            out.append(canonical(spec))
    return out


def missing_import_hint(recorded: Sequence[str] | None) -> str:
    """The end of an error message about something unregistered in a checkpoint made with imports."""
    if not recorded:
        return ""
    names = " ".join(f"--import {_printable(spec)}" for spec in recorded[:5])
    return f"; it was made with {names}: pass the same (recorded imports are never run automatically)"


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise ConfigError(
                f"--import {name}: no module named {e.name!r}; install it, add its folder to "
                "PYTHONPATH, or give the path of a .py file"
            ) from None
        raise ConfigError(f"--import {name} failed: ModuleNotFoundError: {_first_line(e)}") from None
    except SystemExit as e:  # sys.exit() in user code must not end the command as if it had run
        raise ConfigError(f"--import {name} failed: {_exit_text(e)}") from None
    except Exception as e:  # noqa: BLE001 - user code: any failure becomes one line naming the module
        raise ConfigError(f"--import {name} failed: {type(e).__name__}: {_first_line(e)}") from None


def _exit_text(e: SystemExit) -> str:
    return (
        f"it called sys.exit({_printable(repr(e.code), 40)}); a plugin must register things and return, "
        f"not end the process"
    )


def _where(e: BaseException, path: Path) -> str:
    tb, line = e.__traceback__, None
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"line {line}: " if line is not None else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


def _printable(text: str, limit: int = 200) -> str:
    """A recorded string from an untrusted file, safe for one line of terminal output."""
    s = str(text).encode("unicode_escape").decode("ascii")
    return s if len(s) <= limit else s[: limit - 3] + "..."
