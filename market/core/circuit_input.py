"""A circom circuit's input (``raymarket submit proof --circuit ID --input input.json``, issue 13), validated
before anything runs it: the provider computes the witness from it with the circuit's wasm.

Accepted shape: a JSON object whose keys are signal names (``[A-Za-z_][A-Za-z0-9_]*``, at most 64 characters)
and whose values are field elements or arrays of them, nested at most :data:`MAX_DEPTH` deep. A field element is a
non-negative integer below the BN254 scalar modulus ``r``: a JSON integer, or a string of decimal digits or of
``0x`` + hex digits (snarkjs's own spellings). At most :data:`MAX_INPUT_BYTES` bytes of JSON and
:data:`MAX_VALUES` values. :func:`parse_input` returns the canonical form (every value a decimal string, keys
sorted) that the exchange stores and the provider's witness calculator reads; the canonical bytes are
:func:`canonical_input_bytes`.

The input is the client's secret (it determines the whole witness): errors name the signal and the rule, never
the value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from proving.errors import RaymarketError
from proving.field import FR_MODULUS
from proving.formats.snarkjs_json import loads

#: Largest input JSON accepted (bytes), most values, deepest array nesting below the top-level object.
MAX_INPUT_BYTES = 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 8
MAX_SIGNALS = 10_000

SIGNAL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DEC = re.compile(r"^[0-9]{1,78}$")
_HEX = re.compile(r"^0x[0-9a-fA-F]{1,64}$")


class CircuitInputError(RaymarketError, ValueError):
    """The input JSON breaks a rule of the module docstring.

    Attributes:
        field: where (``input``, ``input.<signal>``, ``input.<signal>[i]``); rule: what is wrong (no value).
    """

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def _element(where: str, v: Any) -> str:
    if isinstance(v, bool):
        raise CircuitInputError(where, "a boolean is not a field element (use 0 or 1)")
    if isinstance(v, int):
        n = v
    elif isinstance(v, str) and _DEC.match(v):
        n = int(v)
    elif isinstance(v, str) and _HEX.match(v):
        n = int(v, 16)
    elif isinstance(v, str):
        raise CircuitInputError(where, "a string value must be decimal digits or 0x + hex digits")
    elif isinstance(v, float):
        raise CircuitInputError(where, "a field element is an integer, not a float (quote big numbers)")
    else:
        raise CircuitInputError(where, f"want a field element or an array, got {type(v).__name__}")
    if not 0 <= n < FR_MODULUS:
        raise CircuitInputError(where, "not a field element: must be in [0, r) (r = the BN254 scalar modulus)")
    return str(n)


def _values(where: str, v: Any, depth: int, count: list[int]) -> Any:
    if isinstance(v, list):
        if depth >= MAX_DEPTH:
            raise CircuitInputError(where, f"arrays nested deeper than {MAX_DEPTH}")
        if not v:
            raise CircuitInputError(where, "an empty array")
        return [_values(f"{where}[{i}]", x, depth + 1, count) for i, x in enumerate(v)]
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise CircuitInputError("input", f"more than {MAX_VALUES} values")
    return _element(where, v)


def parse_input(data: str | bytes) -> dict[str, Any]:
    """The canonical input (module docstring) from JSON text.

    Raises:
        CircuitInputError: too large, not JSON, not an object, a bad signal name, a value that is not a field
            element, too deep or too many values (the message names the place, never the value).
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_INPUT_BYTES:
        raise CircuitInputError("input", f"over {MAX_INPUT_BYTES} bytes of JSON")
    try:
        obj = loads(raw, where="input", max_depth=4 * MAX_DEPTH)  # the rule's own check below names the place
    except Exception as exc:  # noqa: BLE001 -- FormatError: not UTF-8 / not JSON / too deep
        raise CircuitInputError("input", f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or not obj:
        raise CircuitInputError("input", "want a non-empty JSON object {\"signal\": value, ...}")
    if len(obj) > MAX_SIGNALS:
        raise CircuitInputError("input", f"more than {MAX_SIGNALS} signals")
    count = [0]
    out: dict[str, Any] = {}
    for name in sorted(obj):
        if not SIGNAL_NAME.match(name):
            raise CircuitInputError("input", f"signal name {name[:64]!r} is not [A-Za-z_][A-Za-z0-9_]* (<= 64 chars)")
        out[name] = _values(f"input.{name}", obj[name], 0, count)
    return out


def canonical_input_bytes(inp: dict[str, Any]) -> bytes:
    """The stored / shipped bytes of a canonical input (sorted keys, no spaces)."""
    return json.dumps(inp, sort_keys=True, separators=(",", ":")).encode()
