"""The circuit input rules (``market.core.circuit_input``) and the bounded wasm witness calculator
(``contracts.wasm_witness``) on a circom2-compiled circuit: the witness equals ``snarkjs wtns calculate``'s, a
wrong input is the input's fault, and the time and memory bounds kill the calculator."""

from __future__ import annotations

import json

import pytest

from contracts.wasm_witness import WitnessError, calculate_witness
from market.core.circuit_input import MAX_DEPTH, MAX_INPUT_BYTES, CircuitInputError, canonical_input_bytes, parse_input
from proving.field import FR_MODULUS
from proving.formats.wtns_file import parse_wtns, read_wtns


@pytest.mark.parametrize("text, field, rule", [
    ("[1]", "input", "non-empty JSON object"),
    ("{}", "input", "non-empty JSON object"),
    ("not json", "input", "not valid JSON"),
    ('{"a-b": 1}', "input", "signal name"),
    ('{"a": 1.5}', "input.a", "not a float"),
    ('{"a": true}', "input.a", "boolean"),
    ('{"a": null}', "input.a", "NoneType"),
    ('{"a": {"b": 1}}', "input.a", "dict"),
    ('{"a": []}', "input.a", "empty array"),
    ('{"a": [1, "x"]}', "input.a[1]", "decimal digits"),
    (json.dumps({"a": str(FR_MODULUS)}), "input.a", "not a field element"),
    (json.dumps({"a": -1}), "input.a", "not a field element"),
    (json.dumps({"a": "0x" + "f" * 64}), "input.a", "not a field element"),
    ('{"a": ' + "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1) + "}", "input.a" + "[0]" * MAX_DEPTH, "deeper"),
])
def test_each_bad_input_has_its_own_error(text, field, rule):
    with pytest.raises(CircuitInputError) as err:
        parse_input(text)
    assert err.value.field == field and rule in err.value.rule, err.value


def test_the_error_never_echoes_a_value():
    secret = str(FR_MODULUS + 12345)
    with pytest.raises(CircuitInputError) as err:
        parse_input(json.dumps({"x": secret}))
    assert secret not in str(err.value) and "12345" not in str(err.value)


def test_size_bound_and_canonical_form():
    with pytest.raises(CircuitInputError, match="bytes of JSON"):
        parse_input(b'{"a": "' + b"1" * MAX_INPUT_BYTES + b'"}')
    inp = parse_input('{"b": [1, "0x10"], "a": "007"}')
    assert inp == {"a": "7", "b": ["1", "16"]}
    assert canonical_input_bytes(inp) == b'{"a":"7","b":["1","16"]}'


def test_wasm_witness_matches_snarkjs_and_is_bounded(sumsq):
    inp = parse_input(sumsq.input.read_text())
    w = parse_wtns(calculate_witness(sumsq.wasm, inp))
    assert w == read_wtns(sumsq.witness) and w[1:3] == [35, 10]
    with pytest.raises(WitnessError) as missing:
        calculate_witness(sumsq.wasm, {"a": "3", "b": "4"})
    assert missing.value.reason == "input" and "Not all inputs" in str(missing.value)
    with pytest.raises(WitnessError) as slow:
        calculate_witness(sumsq.wasm, inp, timeout_s=0.01)
    assert slow.value.reason == "timeout"
    with pytest.raises(WitnessError) as big:
        calculate_witness(sumsq.wasm, inp, max_memory_bytes=1024 * 1024)
    assert big.value.reason == "memory"
