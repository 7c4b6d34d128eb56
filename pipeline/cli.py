"""What every command line shares: its help, one-line errors, quiet logs and a quiet TensorFlow.

    if __name__ == "__main__":
        cli.run(main, "prepare")

- `--help` (or -h) prints the command's docstring and its own flags and exits 0 (absl's exits 1
  and heads the flags with the module file's path).
- A mistake in the flags, an `app.UsageError`, a `CommandError` or an operating-system error ends
  the command with one line, `<command>: error: ...`, and a non-zero exit (2 for usage, 1 for the
  rest); `--verbosity=1` prints the traceback too.
- Log lines a person reads are `HH:MM:SS message` (no thread id or source line); `--verbosity=1`
  brings absl's full prefix back.
- `tensorflow()` imports TensorFlow with its native start-up lines (oneDNN, CUDA stubs, cuInit
  on a machine without a GPU) held back (any other line it prints is still shown), and drops its
  tf.function retracing warning.

No TensorFlow here: commands check their flags and paths before they pay for loading it.
"""

from __future__ import annotations

import contextlib
import errno
import logging as std_logging
import os
import re
import sys
import tempfile
import textwrap
import time
import traceback
from typing import Callable, Iterator

from absl import app, flags, logging

FLAGS = flags.FLAGS
HELP_ARGS = ("--help", "-h", "-?", "--helpshort")
# Native lines TensorFlow prints while it loads and first looks for devices, none of them news to
# a person: oneDNN's notice, the CPU feature notice, the CUDA stub's and cuInit's report of no GPU,
# and absl's note that these came before its log was set up.
_START_UP_CHATTER = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cudart_stub|cpu_feature_guard|To enable the following instructions"
    r"|failed call to cuInit|cuda_(platform|executor|diagnostics)|computation placer already registered"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
)
_HINTS = {
    errno.ENOSPC: "free space and run the same command again: it resumes",
    errno.EDQUOT: "free space (disk quota) and run the same command again: it resumes",
    errno.EACCES: "check the permissions, then run the same command again",
    errno.EPERM: "check the permissions, then run the same command again",
    errno.EROFS: "choose a writable place, or remount it, then run the same command again",
    errno.ENOENT: "check the path",
}


class CommandError(Exception):
    """A failure the command can name: its message is the one line the user sees."""


def verbose() -> bool:
    """--verbosity >= 1 (read from the command line before flags are parsed, too)."""
    if FLAGS.is_parsed():
        return FLAGS.verbosity >= 1
    for i, arg in enumerate(sys.argv[1:], start=1):
        value = arg.split("=", 1)[1] if arg.startswith(("--verbosity=", "-v=")) else None
        if arg in ("--verbosity", "-v") and i + 1 < len(sys.argv):
            value = sys.argv[i + 1]
        if value is not None:
            with contextlib.suppress(ValueError):
                return int(value) >= 1
    return False


def describe_os_error(e: OSError) -> str:
    """'PATH: No space left on device; free space and run the same command again: it resumes'."""
    gone = _gone_directory(e.filename) if e.errno == errno.ENOENT else None
    if gone:
        return _gone_line(gone)
    where = e.filename if e.filename is not None else ""
    if e.filename2 is not None:
        where = f"{where} -> {e.filename2}"
    cause = e.strerror or str(e)
    hint = _HINTS.get(e.errno or -1)
    line = f"{where}: {cause}" if where else cause
    return f"{line}; {hint}" if hint else line


def _gone_line(directory: str) -> str:
    return f"{directory}: the directory is gone (removed while the job ran?); run the same command again: it redoes what was lost"


def _gone_directory(path: object) -> str | None:
    """The highest missing directory above a local `path`, when a directory above it is missing:
    a file that is not there names itself, a directory taken away mid-run is named instead."""
    if not isinstance(path, str) or "://" in path:
        return None
    gone, parent = None, os.path.dirname(os.path.abspath(path))
    while parent != os.path.dirname(parent) and not os.path.exists(parent):
        gone, parent = parent, os.path.dirname(parent)
    return gone


def describe_op_error(message: str) -> str:
    """A TensorFlow op error's message without its graph-node prefix and op suffix, and with the
    advice an OSError of the same cause would get ('...: No space left on device; free space ...').
    A bucket's refusal (gs://, an HTTP status) is described by describe_storage_error."""
    refused = describe_storage_error(message)
    if refused:
        return refused
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", message.strip().splitlines()[0] if message.strip() else message)
    line = re.sub(r"\s*\[Op:\w+\]$", "", line)
    missing = re.match(rf"(.+?)[;:] {os.strerror(errno.ENOENT)}", line)
    gone = _gone_directory(missing.group(1)) if missing else None
    if gone:
        return _gone_line(gone)
    for code, hint in _HINTS.items():
        if os.strerror(code) in line and hint not in line:
            return f"{line}; {hint}"
    return line


def describe_storage_error(message: str) -> str | None:
    """A storage service's refusal in one line, or None when `message` is not one. TensorFlow's
    gs:// client reports an HTTP failure as 'Error executing an HTTP request: HTTP response code
    403 with body '{ ...JSON... }'' and, on a later line, what it was doing ('when initiating an
    upload to gs://b/o'), or 'All 10 retry attempts failed. The last failure: ...': its first line
    names neither the object nor the cause. Returns 'gs://b/o: the bucket refused to write it (HTTP
    403: <the service's message>); give this account write access ..., then run the same command
    again: it resumes'."""
    code = re.search(r"HTTP response code (\d+)", message)
    retried = re.search(r"All (\d+) retry attempts failed", message)
    if not code and not retried:
        return None
    path = re.search(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]+", message)
    said = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', message)
    status = int(code.group(1)) if code else 0
    detail = f"HTTP {status}" if status else "no answer"
    if said:
        detail += ": " + said.group(1).replace('\\"', '"')
    cause, hint = _storage_cause(status, _writing(message))
    if retried:
        cause = f"{cause} after {retried.group(1)} tries"
    where = f"{path.group(0).rstrip('.,;')}: " if path else ""
    return f"{where}{cause} ({detail}); {hint}"


def _writing(message: str) -> bool:
    return bool(re.search(r"upload|writ|compos|copy|delet|renam|creat", message, re.IGNORECASE))


def _storage_cause(status: int, writing: bool) -> tuple[str, str]:
    """(what happened, what to do) for an HTTP status of a storage service (0: no answer)."""
    again = "run the same command again: it resumes"
    access = "write" if writing else "read"
    if status == 401:
        return "the storage service refused the credentials", f"sign in again or set GOOGLE_APPLICATION_CREDENTIALS, then {again}"
    if status == 403:
        return f"the bucket refused to {access} it", f"give this account {access} access to the bucket, then {again}"
    if status == 404:
        return "no such bucket or object", "check the bucket's name and the path"
    if status == 429:
        return "the storage service is rate-limiting this job", f"wait, then {again}"
    return "the storage service failed", f"check the network and the service's status, then {again}"


def help_text(name: str) -> str:
    """The main module's docstring and its own flags, each with its default."""
    main = sys.modules.get("__main__")
    doc = (getattr(main, "__doc__", None) or f"{name}\n").strip()
    own = FLAGS.flags_by_module_dict().get(sys.argv[0], [])
    lines = [doc, "", "flags:"]
    for flag in sorted(own, key=lambda f: f.name):
        default = ",".join(map(str, flag.default)) if isinstance(flag.default, list) else flag.default
        lines.append(textwrap.fill(f"--{flag.name}: {flag.help} (default: {default})", width=100,
                                   initial_indent="  ", subsequent_indent="      "))
    lines += ["", "--verbosity=1 shows TensorFlow's start-up lines, full log prefixes and tracebacks; --helpfull lists absl's own flags."]
    return "\n".join(lines)


def fail(name: str, message: str, code: int = 1) -> None:
    """Print `<name>: error: <message>` (its first line) to stderr and exit with `code`."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
    print(f"{name}: error: {first}", file=sys.stderr)
    sys.exit(code)


class _PlainFormatter(std_logging.Formatter):
    """'12:04:31 message', and 'WARNING: ' / 'ERROR: ' before the message at those levels."""

    def format(self, record: std_logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno < std_logging.WARNING else f"{record.levelname}: "
        return f"{stamp} {level}{record.getMessage()}"


def _quiet_logs() -> None:
    if verbose():
        return
    logging.get_absl_handler().setFormatter(_PlainFormatter())


def _parser(name: str) -> Callable[[list[str]], list[str]]:
    def parse(argv: list[str]) -> list[str]:
        try:
            return FLAGS(argv)
        except flags.Error as e:
            fail(name, f"{e} (--help lists the flags)", 2)
        return []  # not reached

    return parse


def _guarded(main: Callable[[list[str]], None], name: str) -> Callable[[list[str]], None]:
    def run_main(argv: list[str]) -> None:
        _quiet_logs()
        try:
            main(argv)
        except app.UsageError as e:
            fail(name, f"{e} (--help lists the flags)", 2)
        except CommandError as e:
            _traceback_if_verbose()
            fail(name, str(e))
        except OSError as e:
            _traceback_if_verbose()
            fail(name, describe_os_error(e))
        except KeyboardInterrupt:
            fail(name, "interrupted; run the same command again: it resumes", 130)
        except Exception as e:  # a TensorFlow op error (gs:// refused, a file gone): its first line
            if not _is_tf_op_error(e):
                raise
            _traceback_if_verbose()
            fail(name, describe_op_error(e.message))  # type: ignore[attr-defined]

    return run_main


def _is_tf_op_error(e: Exception) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(e, tf.errors.OpError)


def _traceback_if_verbose() -> None:
    if verbose():
        traceback.print_exc()


def run(main: Callable[[list[str]], None], name: str) -> None:
    """absl's app.run, with this module's help, errors and logs."""
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):
        print(help_text(name))
        sys.exit(0)
    app.run(_guarded(main, name), flags_parser=_parser(name))


@contextlib.contextmanager
def _native_stderr_filtered() -> Iterator[None]:
    """Hold back what native code writes to fd 2 inside the block; then print it, minus the chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines() if not _START_UP_CHATTER.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def tensorflow():
    """TensorFlow, imported (and its devices listed, which is when cuInit reports) with its
    start-up chatter held back unless --verbosity >= 1. Call it before anything else imports it."""
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own INFO and WARNING lines
    with _native_stderr_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices()
    tf.get_logger().addFilter(_drop_retracing_notes)
    return tf


def _drop_retracing_notes(record: std_logging.LogRecord) -> bool:
    """False for TensorFlow's "N out of the last M calls ... triggered tf.function retracing"
    warning: a job that builds one model after another (train.py --model=all, folds) makes new
    tf.functions for each, which that counter takes for retracing (BUILD_NOTES, command line)."""
    return "triggered tf.function retracing" not in record.getMessage()
