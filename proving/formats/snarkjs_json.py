"""snarkjs JSON files: ``proof.json``, ``public.json``, ``verification_key.json`` (Groth16, BN254).

Shapes exactly as snarkjs 0.7 writes them (``src/groth16_prove.js``,
``src/zkey_export_verificationkey.js``): integers as decimal strings; points in projective
form with ``z = "1"`` (G1 ``[x, y, "1"]``, G2 ``[[x0, x1], [y0, y1], ["1", "0"]]``, Fq2 in
``(c0, c1)`` order); ``"protocol": "groth16"``, ``"curve": "bn128"``.

On reading, ``z = 0`` is the point at infinity and another ``z`` is undone as ffjavascript's
Jacobian coordinates (``x / z^2, y / z^3``). Readers check everything the format fixes and
raise :class:`proving.errors.FormatError` naming the field: decimal strings only, every
coordinate ``< q``, every public signal ``< r``, every point on its curve (G2 subgroup
membership is left to the verifier, :func:`proving.groth16.points.check_g2`).

``vk_alphabeta_12 = e(alpha, beta)`` is written in snarkjs's tower layout
(``Fq12 = Fq6[w]/(w^2 - v)``, ``Fq6 = Fq2[v]/(v^3 - (9 + u))``) and with snarkjs's pairing
normalisation, which is py_ecc's pairing raised to ``2x(6x^2 + 3x + 1)`` (``x`` the BN
parameter; ffjavascript's hard part of the final exponentiation, Fuentes-Castaneda et al.
2011). snarkjs's verifier does not read it; we write it so files match byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from py_ecc import optimized_bn128 as bn

from proving.curve import G1Point, G2Point, g1_on_curve, g2_on_curve
from proving.errors import FormatError
from proving.field import FQ_MODULUS, FR_MODULUS
from proving.groth16.keys import Proof, VerifyingKey
from proving.groth16.points import to_pyecc_g1, to_pyecc_g2

Q = FQ_MODULUS
#: BN254's curve parameter x (EIP-197: ``q = 36x^4 + 36x^3 + 24x^2 + 6x + 1``).
BN_X = 4965661367192848881
#: snarkjs's GT elements are py_ecc's raised to this power (see the module docstring).
SNARKJS_GT_EXPONENT = 2 * BN_X * (6 * BN_X * BN_X + 3 * BN_X + 1)


def _int(where: str, value: Any, modulus: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FormatError(where, f"expected a decimal string, got {type(value).__name__}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        what = "a negative integer" if value[1:].isdigit() and value[:1] == "-" else "not a decimal integer"
        raise FormatError(where, f"{value[:80]!r} is {what} (expected digits 0-9 only)")
    try:
        out = int(value, 10) if isinstance(value, str) else value
    except ValueError as e:  # more digits than int() converts (sys.int_info.str_digits_check_threshold)
        raise FormatError(where, f"not a usable decimal integer: {e}") from None
    if out < 0:
        raise FormatError(where, f"negative integer {out}")
    if modulus is not None and out >= modulus:
        shown = str(out) if out < 10**90 else f"{str(out)[:20]}...({len(str(out))} digits)"
        raise FormatError(where, f"{shown} is not a field element (must be < {modulus})")
    return out


def _list(where: str, value: Any, length: int) -> list:
    if not isinstance(value, list) or len(value) != length:
        raise FormatError(where, f"expected a list of {length} items")
    return value


def g1_from_json(where: str, value: Any) -> G1Point:
    """``[x, y, z]`` decimal strings (each ``< q``) -> affine G1 point (``z = 0``: infinity).

    Raises:
        FormatError: wrong shape, a non-decimal or out-of-range coordinate, a point off the curve.
    """
    x, y, z = (_int(f"{where}[{i}]", v, Q) for i, v in enumerate(_list(where, value, 3)))
    if z == 0:
        return None
    if z != 1:
        zi = pow(z, -1, Q)
        x, y = x * zi * zi % Q, y * zi * zi * zi % Q
    if not g1_on_curve(x, y):
        raise FormatError(where, "G1 point is not on the curve y^2 = x^3 + 3")
    return (x, y)


def _fq2(where: str, value: Any) -> tuple[int, int]:
    c0, c1 = (_int(f"{where}[{i}]", v, Q) for i, v in enumerate(_list(where, value, 2)))
    return (c0, c1)


def _fq2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % Q, (a[0] * b[1] + a[1] * b[0]) % Q)


def _fq2_inv(a: tuple[int, int]) -> tuple[int, int]:
    t = pow(a[0] * a[0] + a[1] * a[1], -1, Q)
    return (a[0] * t % Q, -a[1] * t % Q)


def g2_from_json(where: str, value: Any) -> G2Point:
    """``[[x0, x1], [y0, y1], [z0, z1]]`` (each ``< q``) -> affine G2 point (``z = 0``: infinity).

    Raises:
        FormatError: wrong shape, a non-decimal or out-of-range coordinate, a point off the
            twist (subgroup membership is the verifier's check).
    """
    x, y, z = (_fq2(f"{where}[{i}]", v) for i, v in enumerate(_list(where, value, 3)))
    if z == (0, 0):
        return None
    if z != (1, 0):
        zi = _fq2_inv(z)
        zi2 = _fq2_mul(zi, zi)
        x, y = _fq2_mul(x, zi2), _fq2_mul(y, _fq2_mul(zi2, zi))
    if not g2_on_curve(x, y):
        raise FormatError(where, "G2 point is not on the twist curve y^2 = x^3 + 3/(9+u)")
    return (x, y)


def g1_to_json(p: G1Point) -> list[str]:
    """Affine G1 point -> snarkjs ``[x, y, "1"]`` (infinity: ``["0", "1", "0"]``)."""
    return ["0", "1", "0"] if p is None else [str(p[0]), str(p[1]), "1"]


def g2_to_json(p: G2Point) -> list[list[str]]:
    """Affine G2 point -> snarkjs ``[[x0, x1], [y0, y1], ["1", "0"]]``."""
    if p is None:
        return [["0", "0"], ["1", "0"], ["0", "0"]]
    return [[str(p[0][0]), str(p[0][1])], [str(p[1][0]), str(p[1][1])], ["1", "0"]]


def _check_tags(where: str, obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise FormatError(where, "expected a JSON object")
    if obj.get("protocol", "groth16") != "groth16":
        raise FormatError(where, f"protocol is {obj.get('protocol')!r}; only groth16 is supported")
    if obj.get("curve", "bn128") not in ("bn128", "bn254"):
        raise FormatError(where, f"curve is {obj.get('curve')!r}; only bn128 (BN254) is supported")
    return obj


def proof_from_json(obj: Any, *, where: str = "proof") -> Proof:
    """A :class:`Proof` from a parsed ``proof.json`` object.

    Raises:
        FormatError: missing keys, wrong shapes, non-decimal values, other protocol/curve.
    """
    obj = _check_tags(where, obj)
    try:
        return Proof(g1_from_json(f"{where}.pi_a", obj["pi_a"]), g2_from_json(f"{where}.pi_b", obj["pi_b"]),
                     g1_from_json(f"{where}.pi_c", obj["pi_c"]))
    except KeyError as e:
        raise FormatError(where, f"missing key {e.args[0]!r}") from None


def proof_to_json(proof: Proof) -> dict:
    """snarkjs ``proof.json`` object of a proof (key order as snarkjs writes it)."""
    return {"pi_a": g1_to_json(proof.a), "pi_b": g2_to_json(proof.b), "pi_c": g1_to_json(proof.c),
            "protocol": "groth16", "curve": "bn128"}


def public_from_json(obj: Any, *, where: str = "public") -> list[int]:
    """Public signals from a parsed ``public.json`` list of decimal strings.

    Raises:
        FormatError: not a list, or an entry that is not a decimal Fr element (``< r``).
    """
    if not isinstance(obj, list):
        raise FormatError(where, "expected a JSON list of decimal strings")
    return [_int(f"{where}[{i}]", v, FR_MODULUS) for i, v in enumerate(obj)]


def public_to_json(public_inputs: Sequence[int]) -> list[str]:
    """snarkjs ``public.json`` list of decimal strings."""
    return [str(int(v)) for v in public_inputs]


def vk_from_json(obj: Any, *, where: str = "verification_key") -> VerifyingKey:
    """A :class:`VerifyingKey` from a parsed snarkjs ``verification_key.json`` (``vk_alphabeta_12`` ignored).

    Raises:
        FormatError: missing keys, wrong shapes, ``nPublic`` inconsistent with ``IC``.
    """
    obj = _check_tags(where, obj)
    try:
        ic = obj["IC"]
        if not isinstance(ic, list) or not ic:
            raise FormatError(where, "IC must be a non-empty list of G1 points")
        if "nPublic" in obj and _int(f"{where}.nPublic", obj["nPublic"]) != len(ic) - 1:
            raise FormatError(where, f"nPublic = {obj['nPublic']} but IC has {len(ic)} points (expected nPublic + 1)")
        return VerifyingKey(
            g1_from_json(f"{where}.vk_alpha_1", obj["vk_alpha_1"]),
            g2_from_json(f"{where}.vk_beta_2", obj["vk_beta_2"]),
            g2_from_json(f"{where}.vk_gamma_2", obj["vk_gamma_2"]),
            g2_from_json(f"{where}.vk_delta_2", obj["vk_delta_2"]),
            tuple(g1_from_json(f"{where}.IC[{i}]", p) for i, p in enumerate(ic)),
        )
    except KeyError as e:
        raise FormatError(where, f"missing key {e.args[0]!r}") from None


def alphabeta_12(vk: VerifyingKey) -> list:
    """``e(alpha, beta)`` in snarkjs's ``vk_alphabeta_12`` layout (2 x 3 x Fq2 decimal strings)."""
    f = bn.pairing(to_pyecc_g2(vk.beta_g2), to_pyecc_g1(vk.alpha_g1)) ** SNARKJS_GT_EXPONENT
    c = [int(x) for x in f.coeffs]
    # py_ecc: Fq[w]/(w^12 - 18 w^6 + 82) with u = w^6 - 9, v = w^2; coefficient of w^(2j+i)
    return [[[str((c[2 * j + i] + 9 * c[2 * j + i + 6]) % Q), str(c[2 * j + i + 6])] for j in range(3)]
            for i in range(2)]


def vk_to_json(vk: VerifyingKey, *, with_alphabeta: bool = True) -> dict:
    """snarkjs ``verification_key.json`` object (``with_alphabeta=False`` skips the ~1 s pairing)."""
    out: dict[str, Any] = {"protocol": "groth16", "curve": "bn128", "nPublic": vk.n_public,
                           "vk_alpha_1": g1_to_json(vk.alpha_g1), "vk_beta_2": g2_to_json(vk.beta_g2),
                           "vk_gamma_2": g2_to_json(vk.gamma_g2), "vk_delta_2": g2_to_json(vk.delta_g2)}
    if with_alphabeta:
        out["vk_alphabeta_12"] = alphabeta_12(vk)
    out["IC"] = [g1_to_json(p) for p in vk.ic]
    return out


#: Deepest JSON nesting :func:`loads` parses (snarkjs documents nest 4 deep).
MAX_JSON_DEPTH = 64
#: A string or a bracket. A string match cannot fail once it has started (an unterminated
#: string, or a lone trailing backslash, runs to the end), so no start position is retried
#: and scanning is linear (a pattern that can fail there is quadratic on ``'"\\' * n``).
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


def json_depth(text: str, limit: int) -> int:
    """A number that exceeds ``limit`` iff the nesting depth of JSON text (brackets outside
    strings) does: the bracket count when that is within ``limit``, else the depth, counted
    up to ``limit + 1``.

    Linear in ``len(text)``: strings are skipped by one possessive regex match each.
    """
    if text.count("[") + text.count("{") <= limit:
        return text.count("[") + text.count("{")
    depth = peak = 0
    for m in _JSON_TOKENS.finditer(text):
        ch = text[m.start()]
        if ch in "[{":
            depth += 1
            if depth > peak:
                peak = depth
                if peak > limit:
                    break
        elif ch in "]}":
            depth -= 1
    return peak


def loads(text: str | bytes, *, where: str = "<json>", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text from an untrusted source.

    Use this, not ``json.loads``, on untrusted text in any process that imports ``py_ecc``
    (all of ``proving`` does): ``py_ecc`` raises the interpreter's recursion limit to 100,000
    at import, and ``json.loads`` of ~100,000 nested brackets then overflows the C stack
    (SIGSEGV) instead of raising ``RecursionError``. The nesting is bounded first.

    Raises:
        FormatError: not UTF-8, nested deeper than ``max_depth``, not valid JSON, or an
            integer literal too long to convert.
    """
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        if json_depth(text, max_depth) > max_depth:
            raise FormatError(where, f"JSON nested deeper than {max_depth} levels")
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(where, f"not valid JSON: {e}") from None
    except ValueError as e:  # UnicodeDecodeError, int digits limit
        raise FormatError(where, f"not usable JSON: {e}") from None
    except RecursionError:
        raise FormatError(where, "JSON nested too deeply") from None


def _load(path: str | Path) -> Any:
    try:
        return loads(Path(path).read_bytes(), where=str(path))
    except OSError as e:
        raise FormatError(str(path), f"cannot read: {e.strerror}") from None


def _dump(path: str | Path, obj: Any) -> None:
    Path(path).write_text(json.dumps(obj, indent=1) + "\n")


def read_proof(path: str | Path) -> Proof:
    """Read a snarkjs ``proof.json``."""
    return proof_from_json(_load(path), where=str(path))


def write_proof(path: str | Path, proof: Proof) -> None:
    """Write a snarkjs ``proof.json``."""
    _dump(path, proof_to_json(proof))


def read_public(path: str | Path) -> list[int]:
    """Read a snarkjs ``public.json``."""
    return public_from_json(_load(path), where=str(path))


def write_public(path: str | Path, public_inputs: Sequence[int]) -> None:
    """Write a snarkjs ``public.json``."""
    _dump(path, public_to_json(public_inputs))


def read_verification_key(path: str | Path) -> VerifyingKey:
    """Read a snarkjs ``verification_key.json``."""
    return vk_from_json(_load(path), where=str(path))


def write_verification_key(path: str | Path, vk: VerifyingKey, *, with_alphabeta: bool = True) -> None:
    """Write a snarkjs ``verification_key.json``."""
    _dump(path, vk_to_json(vk, with_alphabeta=with_alphabeta))
