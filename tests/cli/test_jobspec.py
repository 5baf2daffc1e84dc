"""The job spec model (market.core.jobspec) and the verification policies (market.core.policy): every field's bad
value gives its own error naming the field and the fix; TOML, JSON, YAML and the API's flat form read alike; the
policy formula's numbers."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from typer.testing import CliRunner

import cli
from market.cli.exit_codes import ExitCode
from market.core import policy as P
from market.core.jobspec import JobSpecError, load_spec, parse_document, validate_spec, wire_spec

GOOD = {"kind": "inference", "max_price": "0.001 eth", "inputs": {"text": "one sentence."}}

#: (path of the field, bad value, a word its error must contain)
BAD_FIELDS = [
    ("kind", "mining", "inference"),
    ("max_price", "1.5 parsecs", "unit"),
    ("max_price", 1.5e15, "floats"),
    ("max_price", 0, "positive"),
    ("max_price", "-1 eth", "positive"),
    ("max_price", "0.1 wei", "whole number of wei"),
    ("max_price", 2**256, "2^256"),
    ("max_price", True, "amount"),
    ("deadline_s", "soon", "seconds"),
    ("deadline_s", None, "seconds"),
    ("deadline_s", 0, "range"),
    ("deadline_s", float("nan"), "range"),
    ("deadline_s", 10**9, "30 days"),
    ("collateral", -3, ">= 0"),
    ("collateral", "lots", "amount"),
    ("verification", "spot-check:2", "(0, 1]"),
    ("verification", "spot-check:0", "(0, 1]"),
    ("verification", "spot-check:", "decimal"),
    ("verification", "zk-magic", "unknown verification policy"),
    ("verification", "proof:1", "takes no rate"),
    ("verification", 7, "text"),
    ("job_id", "../etc/passwd", "job_id"),
    ("job_id", "x" * 65, "job_id"),
    ("resources.cpus", -1, "range"),
    ("resources.cpus", "two", "whole number"),
    ("resources.cpus", 10**6, "range"),
    ("resources.gpus", 1.5, "whole number"),
    ("resources.gpu_model", "", "gpu_model"),
    ("resources.gpu_model", "a" * 65, "gpu_model"),
    ("resources.memory", "4 parsecs", "size"),
    ("resources.memory", "0.5B", "whole number of bytes"),
    ("resources.memory", "2048TiB", "1 PiB"),
    ("resources.memory", [1], "size"),
    ("inputs.text_b64", "!!not base64", "base64"),
    ("inputs.text", "   ", "text"),
    ("inputs.colour", "red", "unknown field"),
    ("resources.colour", "red", "unknown field"),
    ("colour", "red", "unknown field"),
]


def _with(path: str, value):
    doc = json.loads(json.dumps(GOOD))
    *section, name = path.split(".")
    target = doc
    for part in section:
        target = target.setdefault(part, {})
    target[name] = value
    return doc


def _problems(doc) -> dict[str, str]:
    with pytest.raises(JobSpecError) as exc:
        validate_spec(doc)
    assert "Traceback" not in str(exc.value)
    return dict(exc.value.problems)


@pytest.mark.parametrize("path,value,word", BAD_FIELDS, ids=[f"{p}={v!r}"[:40] for p, v, _ in BAD_FIELDS])
def test_each_bad_field_has_its_own_error(path, value, word):
    problems = _problems(_with(path, value))
    assert list(problems) == [path], problems  # that field only, by its dotted name
    assert word in problems[path], problems[path]


def test_all_problems_reported_together():
    doc = {"kind": "proof", "max_price": "x", "deadline_s": "y", "resources": {"cpus": "z", "memory": "w"}}
    assert set(_problems(doc)) == {"max_price", "deadline_s", "resources.cpus", "resources.memory"}


@pytest.mark.parametrize("doc,field,word", [
    ({"max_price": 1}, "kind", "required"),
    ({"kind": "proof"}, "max_price", "required"),
    ({**GOOD, "inputs": {}}, "inputs", "exactly one"),
    ({**GOOD, "inputs": {"text": "a.", "text_file": "a.txt"}}, "inputs", "exactly one"),
    ({**GOOD, "inputs": {"text": "a.", "rounds": 3}}, "inputs.rounds", "not an input of a inference job"),
    ({**GOOD, "resources": {"cpus": 0}}, "resources.cpus", "at least one CPU or one GPU"),
    ({**GOOD, "resources": {"gpu_model": "A100"}}, "resources.gpu_model", "gpus >= 1"),
    ({**GOOD, "verification": "proof"}, "verification", "cannot use"),
    ({"kind": "proof", "max_price": 10, "verification": "spot-check:0.1"}, "verification", "use proof"),
    ({**GOOD, "collateral": 1}, "collateral", "below"),
    ({"kind": "proof", "max_price": 10, "inputs": {"witness": "w.wtns"}}, "inputs.witness", "registered circuit"),
    ({"kind": "proof", "max_price": 10, "inputs": {"circuit": "a" * 64}}, "inputs.witness", "exactly one"),
    ({"kind": "proof", "max_price": 10, "inputs": {"circuit": "a" * 64, "witness": "w", "rounds": 9}},
     "inputs.rounds", "mimc7"),
    ({"kind": "proof", "max_price": 10, "inputs": {"circuit": "sha"}}, "inputs.circuit", "64 hex"),
    ({"kind": "proof", "max_price": 10, "inputs": {"preimage": -1}}, "inputs.preimage", "secret"),
    ({"kind": "proof", "max_price": 10, "inputs": "x"}, "inputs", "table"),
    ({"kind": "proof", "max_price_wei": 10, "max_price": 10}, "max_price_wei", "given twice"),
])
def test_rules_across_fields(doc, field, word):
    problems = _problems(doc)
    assert field in problems and word in problems[field], problems


def test_preimage_never_echoed():
    secret = str(P.PolicyError.__name__) + "12345678901234567890"
    doc = {"kind": "proof", "max_price": 10, "inputs": {"preimage": secret + "x"}}
    with pytest.raises(JobSpecError) as exc:
        validate_spec(doc)
    assert "12345678901234567890" not in str(exc.value)
    ok = validate_spec({"kind": "proof", "max_price": 10, "inputs": {"preimage": "424242424242"}})
    assert "424242424242" not in repr(ok) and "424242424242" not in repr(ok.inputs)


TOML = """kind = "inference"
max_price = "2 gwei"
deadline_s = 600
verification = "spot-check:0.25"
job_id = "j-toml-1"
[inputs]
text_file = "s.txt"
[resources]
cpus = 2
gpus = 1
gpu_model = "A100"
memory = "4GiB"
"""
YAML = """kind: inference
max_price: 2 gwei
deadline_s: 600
verification: spot-check:0.25
job_id: j-toml-1
inputs: {text_file: s.txt}
resources: {cpus: 2, gpus: 1, gpu_model: A100, memory: 4GiB}
"""


def test_toml_json_yaml_and_flat_form_agree(tmp_path):
    (tmp_path / "s.txt").write_text("hello world.\n")
    (tmp_path / "job.toml").write_text(TOML)
    (tmp_path / "job.yaml").write_text(YAML)
    doc = parse_document(TOML, "toml")
    (tmp_path / "job.json").write_text(json.dumps(doc))
    specs = [load_spec(tmp_path / f"job.{ext}") for ext in ("toml", "yaml", "json")]
    assert specs[0] == specs[1] == specs[2]
    s = specs[0]
    assert (s.max_price, s.resources.memory, s.resources.gpus, s.policy) == (
        2 * 10**9, 4 * 2**30, 1, P.VerificationPolicy("spot-check", Fraction(1, 4)))
    assert s.inputs.text_file == tmp_path / "s.txt"  # relative to the spec file
    assert s.collateral_wei == 3 * 2 * 10**9 and s.budget_wei == 2 * 10**9 * 4 // 5
    wire = wire_spec(s)
    assert wire["input_b64"] == "aGVsbG8gd29ybGQuCg==" and wire["verification"] == "spot-check:0.25"
    flat = validate_spec({"kind": "inference", "input_b64": "aGVsbG8gd29ybGQuCg==", "max_price_wei": "2000000000",
                          "cpus": 2, "gpus": 1, "gpu_model": "A100", "memory_bytes": 4 * 2**30, "deadline_s": 600,
                          "verification": "spot-check:0.25", "job_id": "j-toml-1"})
    assert wire_spec(flat) == wire


def test_bad_documents_are_clean(tmp_path):
    for name, text, word in [("a.toml", "kind = ", "TOML"), ("a.json", "{", "JSON"), ("a.yaml", "a: [", "YAML"),
                             ("b.yaml", "a: &x [1]\nb: *x\n", "aliases"), ("c.json", "[" * 100_000, "nested deeper"),
                             ("c.yaml", "- " * 200 + "1", "nested deeper"),
                             ("d.yaml", "- 1\n", "table")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(JobSpecError) as exc:
            load_spec(tmp_path / name)
        assert word in str(exc.value), (name, str(exc.value))
    with pytest.raises(JobSpecError, match="no such file"):
        load_spec(tmp_path / "missing.toml")
    (tmp_path / "e.toml").write_text('kind = "inference"\nmax_price = 5\n[inputs]\ntext_file = "nope.txt"\n')
    with pytest.raises(JobSpecError, match="inputs.text_file: no such file"):
        load_spec(tmp_path / "e.toml")


def test_policies_parse_and_price():
    assert str(P.parse_policy(" Spot-Check:.050 ")) == "spot-check:0.05"
    for text in ("proof", "attest-only", "spot-check:1", "spot-check:0.000001"):
        assert str(P.parse_policy(text)) == text
    price = 10**15
    coll = {t: P.required_collateral_wei(price, P.parse_policy(t))
            for t in ("proof", "spot-check:1", "spot-check:0.5", "spot-check:0.1", "attest-only")}
    assert coll == {"proof": 10**14, "spot-check:1": 10**14, "spot-check:0.5": price, "spot-check:0.1": 9 * price,
                    "attest-only": 19 * price}  # cheaper verification -> more collateral
    spot = P.parse_policy("spot-check:0.25")
    assert P.prover_budget_wei(price, spot) == price * 4 // 5 and P.verification_reserve_wei(price, spot) == price // 5
    assert P.prover_budget_wei(price, P.parse_policy("proof")) == price
    assert P.spot_sample_size(spot, 240) == 60 and P.spot_sample_size(spot, 1) == 1
    assert P.spot_sample_size(P.parse_policy("attest-only"), 240) == 0
    # the defaults reproduce the collateral of jobs before policies (issue 14 finding 5)
    assert P.default_collateral_wei(price, "proof") == 10**14 and P.default_collateral_wei(price, "inference") == price
    # one wrong row of N is caught with n/N >= RATE; m wrong rows with the hypergeometric formula
    assert P.detection_probability_of(240, 1, 60) == Fraction(1, 4)
    assert P.detection_probability_of(240, 240, 1) == 1 and P.detection_probability_of(240, 0, 60) == 0
    # Becker's condition holds at the required collateral: p * (C + P) >= P
    for text in ("proof", "spot-check:0.3", "spot-check:0.07", "attest-only"):
        pol = P.parse_policy(text)
        p = P.detection_probability(pol)
        assert p * (P.required_collateral_wei(price, pol) + price) >= price


def test_cli_spec_errors_are_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYMARKET_HOME", str(tmp_path / "home"))
    (tmp_path / "bad.toml").write_text('kind = "inference"\nmax_price = "1 parsec"\n[resources]\nmemory = "lots"\n'
                                       '[inputs]\ntext = "a."\n')
    runner = CliRunner()
    for cmd in (["submit", str(tmp_path / "bad.toml")], ["quote", str(tmp_path / "bad.toml")]):
        res = runner.invoke(cli.app, cmd)
        assert res.exit_code == ExitCode.BAD_INPUT, res.output
        assert "max_price" in res.stderr and "resources.memory" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(cli.app, ["submit", "inference", str(tmp_path / "bad.toml"), "--max-price", "1",
                                  "--verification", "spot-check:9"])
    assert res.exit_code == ExitCode.USAGE and "--verification" in res.stderr, res.output
    res = runner.invoke(cli.app, ["submit", "proof", "--max-price", "1", "--memory", "2 parsecs", "--gpu-model", "A1"])
    assert res.exit_code == ExitCode.USAGE and "--memory" in res.stderr and "--gpu-model" not in res.stderr
