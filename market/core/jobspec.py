"""A job spec file (``raymarket submit JOB.toml``, ``raymarket quote JOB.toml``): one pydantic model,
:class:`JobFile`, for TOML, JSON and YAML documents and for the ``submit inference|proof`` flags alike.

The document (every field but ``kind`` and ``max_price`` optional)::

    kind = "inference"                 # or "proof"
    max_price = "0.002 eth"            # integer wei, or "<number> wei|gwei|eth" (exact, market.core.units)
    deadline_s = 3600                  # seconds until the result is due, (0, 30 days]
    collateral = "0.01 eth"            # provider stake locked for the job; default: the policy's required one
    verification = "spot-check:0.1"    # proof | spot-check:RATE | attest-only (market.core.policy)
    job_id = "j-embed-001"             # your id (a retry with it is idempotent)

    [inputs]                           # inference: exactly one of text_file, text, text_b64
    text_file = "sentences.txt"        # relative paths are relative to the spec file
    # proof: circuit = "mimc7" (default; rounds = 91, preimage = "123" or none for a random one),
    #        or circuit = "<64 hex: a registered circuit id>" with witness = "w.wtns" (public = "public.json")
    #        or input = "input.json" (the provider computes the witness from the circuit's wasm)

    [resources]
    cpus = 1                           # >= 0; cpus + gpus >= 1
    gpus = 0
    gpu_model = "A100"                 # needs gpus >= 1; default: any model
    memory = "4GiB"                    # bytes, or with a unit: B kB MB GB TB KiB MiB GiB TiB

The flat form of the API's ``spec`` (``max_price_wei``, ``collateral_wei``, ``cpus``, ``memory_bytes``,
``input_b64``, ``circuit``, ``rounds``, ``preimage`` at the top level; what ``raymarket quote '{...}'`` took
before spec files) is read as the same model. Every error names its field (``resources.memory``) and the fix;
:func:`load_spec` raises them together as one :class:`JobSpecError`. A preimage is never echoed (it is the
job's secret).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, field_validator, \
    model_validator

from market.core.policy import (PolicyError, VerificationPolicy, default_policy, parse_policy, prover_budget_wei,
                                required_collateral_wei)
from market.core.units import AmountError, parse_amount
from proving.errors import RaymarketError
from proving.field import FR_MODULUS

#: Largest spec document read, bytes (a spec names its inputs by path; inline text belongs in a file).
MAX_SPEC_BYTES = 1 << 20
#: Largest amount, wei (a uint256).
MAX_WEI = 2**256 - 1
#: Longest deadline, seconds (the exchange's limit, ``market.protocol.JobSpecIn``).
MAX_DEADLINE_S = 30 * 86400
#: Largest memory request, bytes (1 PiB, the exchange's limit).
MAX_MEMORY_BYTES = 2**50
#: Most CPUs / GPUs / MiMC rounds a job may ask for (the exchange's limits).
MAX_CPUS, MAX_GPUS, MAX_ROUNDS = 10_000, 1_000, 10_000
#: Default MiMC-7 rounds (circomlib's).
DEFAULT_ROUNDS = 91
#: Job ids and GPU models: what the exchange accepts (``market.protocol.ID_PATTERN``).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_GPU_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
#: Bytes per size unit (case-insensitive).
SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
              "gib": 2**30, "tib": 2**40}


class JobSpecError(RaymarketError):
    """A job spec that does not validate. ``problems`` is ``[(field, message with the fix)]``, field a dotted path
    (``resources.memory``; ``"spec"`` for the document itself); ``str()`` lists them all on one line."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("job spec: " + "; ".join(f"{f}: {m}" for f, m in problems))

    @property
    def hint(self) -> str:
        """The CLI handler's hint line."""
        return "fix the field(s) named above; the format is in `raymarket submit --help` and market/core/jobspec.py"


# ----------------------------------------------------------------------------- scalar parsers (each names its fix)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_size(value: Any) -> int:
    """``"4GiB"`` -> 4294967296; an integer is bytes; exact (Decimal), a whole number of bytes <= 1 PiB.

    Raises:
        ValueError: not a size, an unknown unit, a fraction of a byte, or too large (the message says what to write).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{_short(value)} is not a size: write bytes (4294967296) or a string with a unit ('4GiB')")
    try:
        if isinstance(value, int):
            size = Decimal(value)
        else:
            m = _SIZE.fullmatch(value[:100])
            if m is None or m.group(2).lower() not in SIZE_UNITS:
                raise ValueError(f"{_short(value)} is not a size: write e.g. '512MiB', '4GiB' or a number of bytes "
                                 "(units: B kB MB GB TB KiB MiB GiB TiB)")
            size = Decimal(m.group(1)) * SIZE_UNITS[m.group(2).lower()]
    except InvalidOperation:
        raise ValueError(f"{_short(value)} is not a size: write e.g. '4GiB'") from None
    if size != size.to_integral_value():
        raise ValueError(f"{_short(value)} is not a whole number of bytes: use a smaller unit ('1536MiB')")
    if not 0 <= size <= MAX_MEMORY_BYTES:
        raise ValueError(f"{_short(value)} is out of range: between 0 and 1 PiB ({MAX_MEMORY_BYTES} bytes)")
    return int(size)


def parse_wei(value: Any, *, positive: bool) -> int:
    """An amount: an integer (wei) or a string ``"<number> [wei|gwei|eth]"``, exact; below 2^256.

    Raises:
        ValueError: a float, a bool, malformed text, a fraction of a wei, negative, zero when ``positive``, too large.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{_short(value)} is not an amount: write integer wei (1000000000) or a string with a unit "
                         "('20 gwei', '0.001 eth'); floats are not exact")
    if isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"must be {'positive' if positive else '>= 0'}, got {_short(value)}")
        try:
            value = parse_amount(value[:200])
        except AmountError as exc:
            if "is not an amount" in str(exc):
                raise ValueError(f"{_short(value)} is not an amount: write an integer number of wei (1000000000) or "
                                 "a number with a unit ('20 gwei', '0.001 eth')") from None
            raise ValueError(str(exc)) from None
    if value < 0 or (positive and value == 0):
        raise ValueError(f"must be {'positive' if positive else '>= 0'}, got {value} wei")
    if value > MAX_WEI:
        raise ValueError("must be below 2^256 wei (a uint256); e.g. '0.01 eth'")
    return value


def _int(lo: int, hi: int, example: str) -> Any:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{_short(v)} is not a whole number: write e.g. {example}")
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range: between {lo} and {hi} (e.g. {example})")
        return v
    return check


def _deadline(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{_short(v)} is not a number of seconds: write e.g. deadline_s = 3600")
    if not math.isfinite(v) or not 0 < v <= MAX_DEADLINE_S:
        raise ValueError(f"{v} is out of range: seconds in (0, {MAX_DEADLINE_S}] (30 days), e.g. 3600")
    return float(v)


def _text(pattern: re.Pattern[str], example: str) -> Any:
    def check(v: Any) -> str:
        if not isinstance(v, str) or pattern.fullmatch(v) is None:
            raise ValueError(f"{_short(v)} is not valid: write e.g. {example}")
        return v
    return check


def _preimage(v: Any) -> int:
    """A MiMC-7 preimage in [0, r): an integer or a decimal string (never echoed: it is the job's secret)."""
    if isinstance(v, str) and re.fullmatch(r"[0-9]{1,78}", v.strip()):
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < FR_MODULUS:
        raise ValueError("must be an integer in [0, r), r the BN254 scalar field modulus, as a number or a decimal "
                         "string (the value is not shown: it is your secret); or leave it out for a random one")
    return v


def _path(v: Any) -> Path:
    if not isinstance(v, str) or not v.strip() or len(v) > 4096 or "\x00" in v:
        raise ValueError(f"{_short(v)} is not a file path: write e.g. \"inputs/sentences.txt\"")
    return Path(v)


def _existing(v: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve ``v`` against the context's ``base_dir`` and, when the context asks (``check_files``), require a file."""
    ctx = info.context or {}
    if v is None or "base_dir" not in ctx:
        return v
    path = v if v.is_absolute() else Path(ctx["base_dir"]) / v
    if ctx.get("check_files", True) and not path.is_file():
        raise ValueError(f"no such file: {str(path)[:200]} (paths are relative to the spec file)")
    return path


Cpus = Annotated[int, BeforeValidator(_int(0, MAX_CPUS, "cpus = 2"))]
Gpus = Annotated[int, BeforeValidator(_int(0, MAX_GPUS, "gpus = 1"))]
Rounds = Annotated[int, BeforeValidator(_int(1, MAX_ROUNDS, "rounds = 91"))]
Memory = Annotated[int, BeforeValidator(parse_size)]
Price = Annotated[int, BeforeValidator(lambda v: parse_wei(v, positive=True))]
Stake = Annotated[int, BeforeValidator(lambda v: parse_wei(v, positive=False))]
Seconds = Annotated[float, BeforeValidator(_deadline)]
GpuModel = Annotated[str, BeforeValidator(_text(_GPU_MODEL, 'gpu_model = "A100"'))]
JobId = Annotated[str, BeforeValidator(_text(_ID, 'job_id = "j-embed-001" (1-64 of A-Z a-z 0-9 _ -)'))]
Circuit = Annotated[str, BeforeValidator(_text(re.compile(r"mimc7|[0-9a-f]{64}"),
                                               '"mimc7" or a registered circuit id (64 hex, `raymarket circuit list`)'))]
Preimage = Annotated[int, BeforeValidator(_preimage)]
FilePath = Annotated[Path, BeforeValidator(_path)]
Text = Annotated[str, BeforeValidator(_text(re.compile(r"(?s).*\S.*"), 'text = "one sentence per line"'))]


# ----------------------------------------------------------------------------- the model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Resources(_Model):
    """What the job needs: ``cpus``, ``gpus``, ``gpu_model`` (None: any), ``memory`` (bytes)."""

    cpus: Cpus = 1
    gpus: Gpus = 0
    gpu_model: GpuModel | None = None
    memory: Memory = 0


class Inputs(_Model):
    """The job's inputs (paths relative to the spec file). Inference: one of ``text_file``, ``text``, ``text_b64``.
    Proof: ``circuit`` (``mimc7``: ``rounds``, ``preimage``; a registered id: ``witness`` [``public``] or ``input``)."""

    text_file: FilePath | None = None
    text: Text | None = None
    text_b64: str | None = None
    circuit: Circuit | None = None
    rounds: Rounds | None = None
    preimage: Preimage | None = None
    witness: FilePath | None = None
    public: FilePath | None = None
    input: FilePath | None = None

    @field_validator("text_file", "witness", "public", "input", mode="after")
    @classmethod
    def _files(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _existing(v, info)

    @field_validator("text_b64", mode="before")
    @classmethod
    def _b64(cls, v: Any) -> str:
        try:
            if not isinstance(v, str) or not base64.b64decode(v, validate=True):
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError(f"{_short(v)} is not non-empty base64 text: or use text_file = \"sentences.txt\"") from None
        return v

    def __repr__(self) -> str:  # never show the preimage
        return "Inputs(" + ", ".join(f"{k}={'<secret>' if k == 'preimage' else repr(v)}"
                                     for k, v in self.__dict__.items() if v is not None) + ")"


#: Fields of the API's flat ``spec`` and where they live in the file form.
_FLAT = {"max_price_wei": ("max_price",), "collateral_wei": ("collateral",), "cpus": ("resources", "cpus"),
         "gpus": ("resources", "gpus"), "gpu_model": ("resources", "gpu_model"),
         "memory_bytes": ("resources", "memory"), "memory": ("resources", "memory"),
         "input_b64": ("inputs", "text_b64"), "circuit": ("inputs", "circuit"), "rounds": ("inputs", "rounds"),
         "preimage": ("inputs", "preimage")}
_KIND_INPUTS = {"inference": ("text_file", "text", "text_b64"),
                "proof": ("circuit", "rounds", "preimage", "witness", "public", "input")}


class JobFile(_Model):
    """A job as a client describes it (see the module doc); validated field by field, then across fields.

    ``policy`` is the verification policy (the named one, or the kind's default); ``collateral_wei`` is the
    collateral (the given one, or the policy's required one); ``budget_wei`` what the provider may be paid.
    """

    kind: Literal["inference", "proof"]
    max_price: Price
    deadline_s: Seconds = 3600.0
    collateral: Stake | None = None
    verification: str | None = None
    job_id: JobId | None = None
    inputs: Inputs = Inputs()
    resources: Resources = Resources()

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, doc: Any) -> Any:
        """Move the API's flat fields (``max_price_wei``, ``cpus``, ...) to their place in the file form."""
        if not isinstance(doc, dict) or not any(k in _FLAT for k in doc):
            return doc
        doc = dict(doc)
        for key, (*section, name) in ((k, _FLAT[k]) for k in list(doc) if k in _FLAT):
            target = doc
            if section:
                target = doc.setdefault(section[0], {})
                if not isinstance(target, dict):
                    return doc  # the section's own error says it is not a table
                target = doc[section[0]] = dict(target)
            if name in target:
                raise ValueError(f"{key}: given twice (also as {'.'.join([*section, name])}): keep one")
            target[name] = doc.pop(key)
        return doc

    @field_validator("verification", mode="before")
    @classmethod
    def _policy_text(cls, v: Any) -> Any:
        if v is not None:
            parse_policy(v)  # raises PolicyError (a ValueError) with the fix
        return v

    @model_validator(mode="after")
    def _across(self) -> "JobFile":
        problem = _cross_problem(self)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return self

    @property
    def policy(self) -> VerificationPolicy:
        """The job's verification policy (the named one, else :func:`market.core.policy.default_policy`)."""
        return parse_policy(self.verification, self.kind) if self.verification else default_policy(self.kind)

    @property
    def collateral_wei(self) -> int:
        """The collateral: the given one, else the policy's :func:`required_collateral_wei` of ``max_price``."""
        return self.collateral if self.collateral is not None else required_collateral_wei(self.max_price, self.policy)

    @property
    def budget_wei(self) -> int:
        """What the provider may be paid: :func:`market.core.policy.prover_budget_wei` of ``max_price``."""
        return prover_budget_wei(self.max_price, self.policy)


def _cross_problem(spec: JobFile) -> tuple[str, str] | None:
    """The first rule across fields that ``spec`` breaks, as ``(field, message)``; None when it breaks none."""
    r, i = spec.resources, spec.inputs
    if r.cpus == 0 and r.gpus == 0:
        return "resources.cpus", "a job needs at least one CPU or one GPU: set cpus >= 1 or gpus >= 1"
    if r.gpu_model is not None and r.gpus == 0:
        return "resources.gpu_model", "a GPU model needs gpus >= 1: set gpus or drop gpu_model"
    given = [k for k, v in i.__dict__.items() if v is not None]
    for k in given:
        if k not in _KIND_INPUTS[spec.kind]:
            return f"inputs.{k}", f"not an input of a {spec.kind} job: its inputs are {', '.join(_KIND_INPUTS[spec.kind])}"
    problem = _inference_inputs(given) if spec.kind == "inference" else _proof_inputs(i, given)
    if problem is not None:
        return problem
    try:
        policy = spec.policy
    except PolicyError as exc:
        return "verification", str(exc)
    if prover_budget_wei(spec.max_price, policy) == 0:
        return "max_price", (f"{spec.max_price} wei leaves nothing for the provider after verification "
                             f"{str(policy)!r} takes its share: raise it")
    need = required_collateral_wei(spec.max_price, policy)
    if spec.collateral is not None and spec.collateral < need:
        return "collateral", (f"{spec.collateral} wei is below the {need} wei that verification {str(policy)!r} "
                              f"requires at max_price {spec.max_price} wei (market.core.policy): raise it or leave it "
                              "out")
    return None


def _inference_inputs(given: list[str]) -> tuple[str, str] | None:
    if len(given) != 1:
        return "inputs", "an inference job needs exactly one of text_file, text, text_b64 (e.g. text_file = \"s.txt\")"
    return None


def _proof_inputs(i: Inputs, given: list[str]) -> tuple[str, str] | None:
    if i.circuit is None or i.circuit == "mimc7":
        for k in ("witness", "public", "input"):
            if k in given:
                return f"inputs.{k}", "only for a registered circuit: set inputs.circuit to its id (`raymarket circuit list`)"
        return None
    for k in ("rounds", "preimage"):
        if k in given:
            return f"inputs.{k}", "only for the mimc7 example: a registered circuit takes witness (or input)"
    if (i.witness is None) == (i.input is None):
        return "inputs.witness", "a registered circuit needs exactly one of witness = \"w.wtns\" or input = \"input.json\""
    if i.public is not None and i.witness is None:
        return "inputs.public", "public goes with witness (with input, the provider computes the signals)"
    return None


# ----------------------------------------------------------------------------- documents -> model


#: Field -> an example line, for pydantic's own errors (missing field, wrong kind of value).
EXAMPLES = {"kind": 'kind = "inference" (or "proof")', "max_price": 'max_price = "0.001 eth"',
            "inputs": '[inputs] text_file = "sentences.txt"', "resources": "[resources] cpus = 1"}


_SECTIONS = {"inputs": Inputs.model_fields, "resources": Resources.model_fields}


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """``[(field, message with the fix)]`` of a pydantic error of :class:`JobFile` (never the input values)."""
    out = []
    for e in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not loc and re.match(r"^[a-z_.]+: ", msg):
            loc, msg = msg.split(": ", 1)
        kind = e.get("type")
        if kind == "missing":
            msg = f"required: add it, e.g. {EXAMPLES.get(loc, loc + ' = ...')}"
        elif kind == "extra_forbidden":
            section = loc.rsplit(".", 1)[0] if "." in loc else ""
            known = _SECTIONS.get(section, JobFile.model_fields)
            msg = f"unknown field: remove it (known{' in ' + section if section else ''}: {', '.join(known)})"
        elif kind == "literal_error" and loc == "kind":
            msg = 'must be "inference" or "proof"'
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msg = f"must be a table / object, e.g. {EXAMPLES.get(loc, loc)}" if loc else "must be a table / object"
        out.append((loc or "spec", msg))
    return out


def validate_spec(doc: Any, *, base_dir: Path | None = None, check_files: bool = True) -> JobFile:
    """``doc`` (a parsed document or a dict built from CLI flags) as a :class:`JobFile`; with ``base_dir``,
    relative paths are resolved against it (and must be files when ``check_files``).

    Raises:
        JobSpecError: every field that fails, each with its fix.
    """
    if not isinstance(doc, dict):
        raise JobSpecError([("spec", f"must be a table / object of fields, not {type(doc).__name__}")])
    ctx = None if base_dir is None else {"base_dir": base_dir, "check_files": check_files}
    try:
        return JobFile.model_validate(doc, context=ctx)
    except ValidationError as exc:
        raise JobSpecError(problems_of(exc)) from None
    except RecursionError:
        raise JobSpecError([("spec", "nested too deeply")]) from None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors/aliases (a spec has no use for them; they allow billion-laughs documents)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in a job spec")
        return super().compose_node(parent, index)


#: Deepest nesting of brackets (``[`` / ``{``, counted even inside strings) a spec document may have; longest run
#: of leading spaces and ``- `` of a line (YAML block nesting). A spec needs 2 levels; the parsers (PyYAML, tomllib)
#: recurse per level and take seconds on a 10 kB document nested 5,000 deep, so the depth is checked first.
MAX_NESTING, MAX_INDENT = 16, 96
_INDENT = re.compile(r"^[ \t-]{%d,}" % (MAX_INDENT + 1), re.MULTILINE)


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in ``text`` (quotes ignored: an over-estimate, never an under-estimate), up to
    :data:`MAX_NESTING` + 1 (the scan stops there)."""
    depth = best = 0
    for m in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        if depth > best:
            best = depth
            if best > MAX_NESTING:
                break
    return best


def parse_document(text: str, fmt: Literal["toml", "json", "yaml"]) -> Any:
    """The document ``text`` in format ``fmt``.

    Raises:
        JobSpecError: over :data:`MAX_SPEC_BYTES`, nested deeper than :data:`MAX_NESTING` (or indented past
            :data:`MAX_INDENT`), or not valid ``fmt`` (with the parser's line and column).
    """
    if len(text) > MAX_SPEC_BYTES:
        raise JobSpecError([("spec", f"over {MAX_SPEC_BYTES} bytes: name big inputs by path (text_file = ...)")])
    if nesting_depth(text) > MAX_NESTING or _INDENT.search(text):
        raise JobSpecError([("spec", f"nested deeper than {MAX_NESTING} levels: a spec has two (its [inputs] and "
                                     "[resources] tables)")])
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        if fmt == "json":
            return json.loads(text)
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError, UnicodeError) as exc:
        raise JobSpecError([("spec", f"not valid {fmt.upper()}: {str(exc).splitlines()[0][:200]}")]) from None
    except (RecursionError, ValueError) as exc:  # deep nesting; a value out of the parser's range
        raise JobSpecError([("spec", f"not valid {fmt.upper()}: {type(exc).__name__}")]) from None


#: File suffix -> document format.
FORMATS: dict[str, Literal["toml", "json", "yaml"]] = {".toml": "toml", ".json": "json", ".yaml": "yaml",
                                                        ".yml": "yaml"}


def is_spec_path(text: str) -> bool:
    """``text`` names a spec file by its suffix (``.toml``, ``.json``, ``.yaml``, ``.yml``)."""
    return Path(text).suffix.lower() in FORMATS


def parse_spec_bytes(data: bytes, fmt: Literal["toml", "json", "yaml"], *, base_dir: Path | None = None,
                     check_files: bool = True) -> JobFile:
    """A spec from the bytes of a document in ``fmt`` (UTF-8): :func:`parse_document` then :func:`validate_spec`.

    Raises:
        JobSpecError: not UTF-8, over :data:`MAX_SPEC_BYTES`, a bad document, or any field.
    """
    if len(data) > MAX_SPEC_BYTES:
        raise JobSpecError([("spec", f"over {MAX_SPEC_BYTES} bytes: name big inputs by path (text_file = ...)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobSpecError([("spec", f"not UTF-8 text (byte {exc.start})")]) from None
    return validate_spec(parse_document(text, fmt), base_dir=base_dir, check_files=check_files)


def load_spec(source: str | Path, *, check_files: bool = True) -> JobFile:
    """A spec from a file (format by suffix; relative input paths resolved against its folder) or, when ``source``
    is no file, from inline JSON (paths relative to the working directory).

    Raises:
        JobSpecError: unreadable file, bad document, or any field (see :func:`validate_spec`).
    """
    path = Path(source)
    if path.suffix.lower() in FORMATS or path.is_file():
        try:
            if path.stat().st_size > MAX_SPEC_BYTES:
                raise JobSpecError([("spec", f"{path} is over {MAX_SPEC_BYTES} bytes")])
            data = path.read_bytes()
        except OSError as exc:
            why = "no such file" if isinstance(exc, FileNotFoundError) else exc.__class__.__name__
            raise JobSpecError([("spec", f"cannot read {str(path)[:200]}: {why}")]) from None
        return parse_spec_bytes(data, FORMATS.get(path.suffix.lower(), "json"), base_dir=path.parent,
                                check_files=check_files)
    return validate_spec(parse_document(str(source), "json"), base_dir=Path("."), check_files=check_files)


# ----------------------------------------------------------------------------- model -> the API's spec


def wire_spec(spec: JobFile, *, preimage: int | None = None) -> dict[str, Any]:
    """The API's ``spec`` (``market.protocol.JobSpecIn`` fields) for ``spec``, reading its input files: inference
    text -> ``input_b64``; a witness -> ``witness_b64``; ``public.json`` -> ``public``; ``input.json`` ->
    ``input_json``. A MiMC-7 job without a preimage gets ``preimage`` (the caller draws a random one; a quote may
    pass any value, matching does not depend on it).

    Raises:
        JobSpecError: an input file that cannot be read, or a public.json that is not a list of decimal strings.
    """
    r, i = spec.resources, spec.inputs
    out: dict[str, Any] = {"kind": spec.kind, "max_price_wei": str(spec.max_price), "deadline_s": spec.deadline_s,
                           "cpus": r.cpus, "gpus": r.gpus, "gpu_model": r.gpu_model, "memory_bytes": r.memory,
                           "collateral_wei": str(spec.collateral_wei), "verification": str(spec.policy)}
    if spec.job_id is not None:
        out["job_id"] = spec.job_id
    if spec.kind == "inference":
        data = i.text.encode() if i.text is not None else _read("inputs.text_file", i.text_file) if i.text_file else None
        out["input_b64"] = i.text_b64 if data is None else base64.b64encode(data).decode()
        return out
    if i.circuit is None or i.circuit == "mimc7":
        secret = i.preimage if i.preimage is not None else preimage
        return {**out, "circuit": "mimc7", "rounds": i.rounds or DEFAULT_ROUNDS,
                "preimage": str(secret if secret is not None else 0)}
    out["circuit"] = i.circuit
    if i.input is not None:
        out["input_json"] = _read("inputs.input", i.input).decode("utf-8", errors="replace")
        return out
    out["witness_b64"] = base64.b64encode(_read("inputs.witness", i.witness)).decode()
    if i.public is not None:
        try:
            public = json.loads(_read("inputs.public", i.public))
            out["public"] = [str(int(x)) for x in public]
        except (ValueError, TypeError, RecursionError):
            raise JobSpecError([("inputs.public", "not a snarkjs public.json (a JSON list of decimal strings)")]) \
                from None
    return out


def _read(field: str, path: Path | None) -> bytes:
    try:
        return Path(str(path)).read_bytes()
    except OSError as exc:
        raise JobSpecError([(field, f"cannot read {str(path)[:200]}: {exc.strerror or type(exc).__name__}")]) from None
