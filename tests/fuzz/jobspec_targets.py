"""Fuzz target of the job spec file (issue 14 "Fuzzing in the suite"): mutated TOML, JSON and YAML documents through
:func:`market.core.jobspec.parse_spec_bytes` (the parser of ``raymarket submit JOB.toml``), which must accept them
or raise :class:`market.core.jobspec.JobSpecError` -- never another exception.

An input is ``b"<format>\\n" + document``. The corpus is a few valid specs of both kinds in each format; the mutator
mixes field-aware changes (a field set to a boundary amount, size, policy or id, or deleted, or a field added),
the generic JSON document mutations, line edits of TOML (values replaced, lines deleted or repeated, tables
repeated), text-level mutations (punctuation, bad UTF-8, deep nesting) and a document read in another format.
Accepted specs are also used as the CLI uses them (policy, collateral, budget).
"""

from __future__ import annotations

import json
import random

import yaml

from market.core.jobspec import JobSpecError, parse_spec_bytes
from tests.fuzz.engine import Target, register
from tests.fuzz.mutators import _random_scalar, mutate_document, mutate_json_text

#: libyaml's loader and dumper when built in (the mutator's own YAML round trip; the parser under test is
#: market.core.jobspec's pure-Python safe loader).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

#: Valid documents (the corpus), in the file form and the API's flat form.
DOCS: list[dict] = [
    {"kind": "inference", "max_price": "0.002 eth", "deadline_s": 600, "verification": "spot-check:0.25",
     "job_id": "j-fuzz-1", "inputs": {"text": "one sentence.\nanother one.\n"},
     "resources": {"cpus": 2, "gpus": 1, "gpu_model": "A100", "memory": "4GiB"}},
    {"kind": "inference", "max_price": 10**15, "collateral": "0.01 eth", "verification": "attest-only",
     "inputs": {"text_b64": "aGVsbG8gd29ybGQu"}, "resources": {"memory": 2**30}},
    {"kind": "proof", "max_price": "20 gwei", "inputs": {"circuit": "mimc7", "rounds": 91, "preimage": "12345"}},
    {"kind": "proof", "max_price": "1 gwei", "deadline_s": 3600.5, "verification": "proof",
     "inputs": {"circuit": "ab" * 32, "witness": "w.wtns", "public": "public.json"}},
    {"kind": "proof", "max_price": 5000, "inputs": {"circuit": "cd" * 32, "input": "input.json"},
     "resources": {"cpus": 0, "gpus": 2}},
    {"kind": "inference", "input_b64": "aGVsbG8gd29ybGQu", "max_price_wei": "1000", "cpus": 1,
     "memory_bytes": 1024, "deadline_s": 60},
]

#: Values that hit the spec's own parsers: amounts, sizes, policies, ids, seconds.
SPEC_VALUES = (
    "1.5 eth", "1.5eth", "0.1 wei", "1e18", "-1", "-0", "1_000", "\uff11", "0x10", "20 GWEI", "1 ether", " 7 ", "",
    "1.5 parsecs", ".5eth", "5.", "9" * 300, 2**256, 2**256 - 1, 2**63, -1, 0, -0.0, 1.5, 1e308, float("inf"),
    "4GiB", "4 gib", "1.5KiB", "0.3B", "2048TiB", "1PiB", "4GiBB", "1e3", "proof", "proof:1", "attest-only",
    "attest-only:", "spot-check", "spot-check:", "spot-check:0.1", "spot-check:1", "spot-check:1.0", "spot-check:0",
    "spot-check:-0.5", "SPOT-CHECK:.5", "spot-check:1e-3", "spot-check:nan", "spot-check:0.0000001",
    "spot-check:0.000001", "spot-check:0.5:0.5", "../etc/passwd", "x" * 65, "j-ok", "mimc7", "ab" * 32, "AB" * 32,
    "a\x00b", 10**6, 10_000, 10_001, 91, 2**50, 2**50 + 1, 30 * 86400, 30 * 86400 + 1, True, None, [], {},
)

_FIELDS = ("kind", "max_price", "deadline_s", "collateral", "verification", "job_id", "inputs", "resources",
           "inputs.text", "inputs.text_b64", "inputs.text_file", "inputs.circuit", "inputs.rounds",
           "inputs.preimage", "inputs.witness", "inputs.public", "inputs.input", "resources.cpus", "resources.gpus",
           "resources.gpu_model", "resources.memory", "max_price_wei", "collateral_wei", "memory_bytes", "cpus",
           "input_b64", "extra")


def mutate_fields(rng: random.Random, doc: dict) -> dict:
    """One field-aware mutation: a known field set to a spec boundary value (or any scalar), or deleted."""
    doc = json.loads(json.dumps(doc))
    *section, name = rng.choice(_FIELDS).split(".")
    target = doc
    if section:
        target = doc.setdefault(section[0], {})
        if not isinstance(target, dict):
            return doc
    if rng.random() < 0.15:
        target.pop(name, None)
    else:
        target[name] = rng.choice(SPEC_VALUES) if rng.random() < 0.75 else _random_scalar(rng)
    return doc


def _mutate_doc(rng: random.Random, doc: object) -> object:
    for _ in range(rng.choice((1, 1, 2, 3))):
        doc = mutate_fields(rng, doc) if isinstance(doc, dict) and rng.random() < 0.6 else mutate_document(rng, doc)
    return doc


#: TOML value literals a line edit puts after ``key =``.
TOML_VALUES = ('"1.5 eth"', "1.5", "-1", "1e999", "nan", "inf", "0x10", "1_000", "true", '""', "[]", "{}",
               "[1, 2]", '"spot-check:0.1"', '"spot-check:2"', "1979-05-27T07:32:00Z", "'lit'", '"""multi"""',
               "9" * 5000, '"\\u0000"', '"4GiB"', "{ cpus = 1 }", "[[1], [2]]", "")


def mutate_toml(rng: random.Random, text: bytes) -> bytes:
    """A line edit of a TOML document: a value replaced, a line deleted or repeated, a table header repeated."""
    lines = text.split(b"\n")
    i = rng.randrange(len(lines))
    op = rng.random()
    if op < 0.55 and b"=" in lines[i]:
        key = lines[i].split(b"=", 1)[0]
        lines[i] = key + b"= " + rng.choice(TOML_VALUES).encode()
    elif op < 0.7:
        del lines[i]
    elif op < 0.85:
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    else:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice((b"[resources]", b"[inputs]", b"[[inputs]]",
                                                                 b"[kind]", b"x.y.z = 1", b"[")))
    return b"\n".join(lines)


def toml_text(doc: dict) -> str:
    """A TOML rendering of a corpus document (strings, ints, floats, one level of tables)."""
    def lit(v: object) -> str:
        return json.dumps(v) if isinstance(v, str) else repr(v)
    top = [f"{k} = {lit(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [f"[{k}]\n" + "\n".join(f"{kk} = {lit(vv)}" for kk, vv in v.items())
              for k, v in doc.items() if isinstance(v, dict)]
    return "\n".join(top + tables) + "\n"


def corpus() -> list[bytes]:
    """Each document as TOML, JSON and YAML (``b"<format>\\n" + text``)."""
    out = []
    for doc in DOCS:
        out += [b"toml\n" + toml_text(doc).encode(), b"json\n" + json.dumps(doc).encode(),
                b"yaml\n" + yaml.safe_dump(doc).encode()]
    return out


def spec_mutator(rng: random.Random, data: bytes) -> bytes:
    """Mutate one ``b"<format>\\n" + document`` input (see the module doc)."""
    fmt, _, text = data.partition(b"\n")
    choice = rng.random()
    if choice < 0.05:
        fmt = rng.choice((b"toml", b"json", b"yaml"))  # the same text read in another format
    elif choice < 0.7 and fmt in (b"json", b"yaml"):
        doc = json.loads(text) if fmt == b"json" else yaml.load(text, Loader=_LOADER)
        doc = _mutate_doc(rng, doc)
        text = json.dumps(doc).encode() if fmt == b"json" else yaml.dump(doc, Dumper=_DUMPER,
                                                                           allow_unicode=True).encode()
    elif choice < 0.7:
        for _ in range(rng.choice((1, 1, 2))):
            text = mutate_toml(rng, text)
    else:
        text = mutate_json_text(rng, text)
    return fmt + b"\n" + text


def check_spec(data: bytes) -> None:
    """Parse and validate as ``raymarket submit`` does (no input files read), then use the spec's terms."""
    fmt, _, text = data.partition(b"\n")
    spec = parse_spec_bytes(text, fmt.decode())  # type: ignore[arg-type]
    assert spec.collateral_wei >= 0 and 0 < spec.budget_wei <= spec.max_price and str(spec.policy)


JOBSPEC = register(Target("jobspec", corpus, spec_mutator, check_spec, clean=(JobSpecError,)))
