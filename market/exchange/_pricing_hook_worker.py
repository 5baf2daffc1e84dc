"""The pricing-hook worker: the one place provider pricing code runs (started by
:mod:`market.exchange.pricing_hooks` as ``python -I <this file>``, never imported by the exchange).

Standard library only, so that it starts fast and shares no module with the exchange. Protocol: one JSON
request on stdin ``{"spec", "offer", "jobs": [...], "limits": {"memory_bytes", "cpu_s", "file_bytes"}}``;
then, on the original stdout (fd 1 is re-pointed at /dev/null before any provider code runs, so prints
cannot forge answers), one JSON line ``{"loaded": true}`` or ``{"load_error": "..."}``, then one line per
job ``{"i": index, "value": v}`` (``v`` an int, or the repr of anything else as ``{"i", "bad": repr}``) or
``{"i", "error": "Type: message"}``. Lines are cut to ``MAX_LINE_CHARS``.
"""

import importlib
import importlib.util
import json
import os
import sys

try:
    import resource
except ImportError:  # not POSIX: no rlimits
    resource = None

MAX_LINE_CHARS = 2000
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def _limit(limits):
    if resource is None:
        return
    for name, key in (("RLIMIT_AS", "memory_bytes"), ("RLIMIT_CPU", "cpu_s"), ("RLIMIT_FSIZE", "file_bytes"),
                      ("RLIMIT_CORE", None)):
        which = getattr(resource, name, None)
        value = 0 if key is None else limits.get(key)
        if which is None or value is None:
            continue
        try:
            resource.setrlimit(which, (int(value), int(value)))
        except (ValueError, OSError):
            pass


def _load(spec):
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise LookupError("no ':function' part")
    if target.endswith(".py") or os.sep in target:
        if not os.path.isfile(target):
            raise LookupError(f"file {target} not found")
        loader_spec = importlib.util.spec_from_file_location("raymarket_pricing_hook", target)
        if loader_spec is None or loader_spec.loader is None:
            raise LookupError("cannot load the file as a module")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise LookupError(f"{name!r} is missing or not callable")
    return fn


def _send(out, doc):
    line = json.dumps(doc, separators=(",", ":"), default=repr)
    if len(line) > MAX_LINE_CHARS:
        line = json.dumps({k: (v if k == "i" else str(v)[:MAX_LINE_CHARS // 2]) for k, v in doc.items()})
    out.write(line + "\n")
    out.flush()


def _answer(i, value):
    if isinstance(value, int) and not isinstance(value, bool):
        return {"i": i, "value": value}
    return {"i": i, "bad": repr(value)[:200]}


def main():
    request = json.loads(sys.stdin.buffer.read(MAX_REQUEST_BYTES))
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    _limit(request.get("limits") or {})
    try:
        fn = _load(str(request["spec"]))
    except BaseException as exc:  # noqa: BLE001 - anything the provider's import does is its failure
        _send(out, {"load_error": f"{type(exc).__name__}: {exc}"[:500]})
        return
    _send(out, {"loaded": True})
    for i, job in enumerate(request["jobs"]):
        try:
            value = fn(job, dict(request["offer"]))
        except BaseException as exc:  # noqa: BLE001
            _send(out, {"i": i, "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        _send(out, _answer(i, value))


if __name__ == "__main__":
    main()
