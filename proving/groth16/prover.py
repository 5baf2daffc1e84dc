"""Fast Groth16 prover on numba kernels: same algorithm and output as :mod:`prover_ref`.

For the same key, witness, ``r`` and ``s`` this returns exactly the proof that
:func:`proving.groth16.prover_ref.prove` (and snarkjs ``groth16 prove``) computes. Steps:

1. QAP evaluations: ``A_T``, ``B_T`` from the zkey coefficient list (a numba scatter-add in
   Montgomery form), ``C_T = A_T * B_T``.
2. Each of A, B, C to the odd coset (iNTT, scale by ``w_2n^i / n``, NTT;
   :func:`proving.ntt.odd_coset_from_evaluations`); ``p = A*B - C`` there.
3. Five MSMs (Pippenger, :mod:`proving.msm`): ``a_query``, ``b_g1_query``, ``b_g2_query`` and
   ``c_query`` against the witness with its zero entries dropped first (circom witnesses are
   mostly 0/1), ``h_query`` against ``p``.
4. The blinding terms with ``r`` and ``s`` (snarkjs ``groth16_prove.js``).

The key's limb arrays are built once and kept in ``pk.cache["numba_prover"]`` (a
:class:`PreparedKey`); :func:`prove_many` proves many witnesses of one circuit with that one
preparation.

Measured here (``benchmarks/proving.py``, 2 cores, circomlib Poseidon chain of 32,571
constraints, domain 2^15): 0.56-0.6 s wall per proof (1.1 s CPU: the five MSMs ~90%, NTTs ~6%)
vs ``snarkjs groth16 prove`` 4.5 s and groth16py 1.36 s on the same zkey and witness; the first
proof of a process adds ~0.6 s of key preparation and ~0.5 s of loading cached numba code.
Numba uses every core by default: several provers in one machine should each call
``numba.set_num_threads`` (or set ``NUMBA_NUM_THREADS``) to share them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from proving._kernels import ec
from proving._kernels.fields import fr_add, fr_mul, fr_sub
from proving._kernels.limbs import is_zero, load, store
from proving.curve import (
    MontPoints,
    g1_batch_to_affine, g1_from_affine_array, g1_to_affine_array, g1_to_jacobian,
    g2_batch_to_affine, g2_from_affine_array, g2_to_affine_array, g2_to_jacobian,
)
from proving.field import FR, MontInts, to_limbs, to_mont
from proving.groth16.keys import Proof, ProvingKey, check_proving_key_shape
from proving.groth16.prover_ref import check_witness
from proving.msm import msm_g1_arrays, msm_g2_arrays
from proving.ntt import odd_coset_many

CACHE_KEY = "numba_prover"
R = FR.modulus


@dataclass(frozen=True)
class PreparedKey:
    """A proving key as numba arrays (Montgomery affine points, see :mod:`proving.curve`).

    Attributes:
        a_query, b_g1_query, c_query, h_query: ``(k, 8)`` G1 affine arrays.
        b_g2_query: ``(n_vars, 16)`` G2 affine array.
        coef_matrix, coef_constraint, coef_signal: ``int64`` arrays of the A/B coefficient list.
        coef_value: ``(m, 4)`` Montgomery Fr coefficients.
        alpha1, beta1, delta1: ``(1, 12)`` G1 Jacobian rows; beta2, delta2: ``(1, 24)`` G2 rows.
    """

    n_vars: int
    n_public: int
    domain_size: int
    a_query: np.ndarray
    b_g1_query: np.ndarray
    b_g2_query: np.ndarray
    c_query: np.ndarray
    h_query: np.ndarray
    coef_matrix: np.ndarray
    coef_constraint: np.ndarray
    coef_signal: np.ndarray
    coef_value: np.ndarray
    alpha1: np.ndarray
    beta1: np.ndarray
    delta1: np.ndarray
    beta2: np.ndarray
    delta2: np.ndarray


def prepare(pk: ProvingKey) -> PreparedKey:
    """Build (once) and cache in ``pk.cache`` the limb arrays the fast prover needs.

    Raises:
        MalformedProof: an inconsistent size or index in ``pk``
            (:func:`~proving.groth16.keys.check_proving_key_shape`), checked before any kernel runs.
    """
    cached = pk.cache.get(CACHE_KEY)
    if cached is not None:
        return cached
    check_proving_key_shape(pk)
    g1j = lambda p: g1_to_jacobian(g1_to_affine_array([p]))  # noqa: E731
    g2j = lambda p: g2_to_jacobian(g2_to_affine_array([p]))  # noqa: E731
    def g1a(pts: Sequence) -> np.ndarray:  # a zkey's own Montgomery arrays need no conversion
        return pts.mont if isinstance(pts, MontPoints) and not pts.g2 else g1_to_affine_array(pts)

    def g2a(pts: Sequence) -> np.ndarray:
        return pts.mont if isinstance(pts, MontPoints) and pts.g2 else g2_to_affine_array(pts)

    if isinstance(pk.coef_value, MontInts) and pk.coef_value.field is FR:
        coef_value = pk.coef_value.mont
    else:
        coef_value = to_mont(FR, pk.coef_value) if pk.coef_value else np.zeros((0, 4), np.uint64)
    prepared = PreparedKey(
        n_vars=pk.n_vars, n_public=pk.n_public, domain_size=pk.domain_size,
        a_query=g1a(pk.a_query), b_g1_query=g1a(pk.b_g1_query),
        b_g2_query=g2a(pk.b_g2_query), c_query=g1a(pk.c_query),
        h_query=g1a(pk.h_query),
        coef_matrix=np.asarray(pk.coef_matrix, dtype=np.int64),
        coef_constraint=np.asarray(pk.coef_constraint, dtype=np.int64),
        coef_signal=np.asarray(pk.coef_signal, dtype=np.int64),
        coef_value=coef_value,
        alpha1=g1j(pk.alpha_g1), beta1=g1j(pk.beta_g1), delta1=g1j(pk.delta_g1),
        beta2=g2j(pk.beta_g2), delta2=g2j(pk.delta_g2),
    )
    pk.cache[CACHE_KEY] = prepared
    return prepared


@njit(cache=True)
def _qap_abc(matrix, constraint, signal, value, w_mont, n):
    """``(3, n, 4)`` Montgomery evaluations of A, B and C = A*B on the domain (snarkjs ``buildABC1``)."""
    abc = np.zeros((3, n, 4), dtype=np.uint64)
    for i in range(matrix.shape[0]):
        wv = load(w_mont, signal[i])
        if is_zero(wv):
            continue
        m = matrix[i]
        c = constraint[i]
        t = fr_mul(load(value, i), wv)
        acc = (abc[m, c, 0], abc[m, c, 1], abc[m, c, 2], abc[m, c, 3])
        acc = fr_add(acc, t)
        for k in range(4):
            abc[m, c, k] = acc[k]
    for c in range(n):
        prod = fr_mul((abc[0, c, 0], abc[0, c, 1], abc[0, c, 2], abc[0, c, 3]),
                      (abc[1, c, 0], abc[1, c, 1], abc[1, c, 2], abc[1, c, 3]))
        for k in range(4):
            abc[2, c, k] = prod[k]
    return abc


_ONE_STD = (np.uint64(1), np.uint64(0), np.uint64(0), np.uint64(0))


@njit(cache=True, parallel=True)
def _join_abc(abc, out):
    """``out = A*B - C`` in standard form (snarkjs ``joinABC``, then out of Montgomery form)."""
    for i in prange(abc.shape[1]):
        a = (abc[0, i, 0], abc[0, i, 1], abc[0, i, 2], abc[0, i, 3])
        b = (abc[1, i, 0], abc[1, i, 1], abc[1, i, 2], abc[1, i, 3])
        c = (abc[2, i, 0], abc[2, i, 1], abc[2, i, 2], abc[2, i, 3])
        store(out, i, fr_mul(fr_sub(fr_mul(a, b), c), _ONE_STD))


def h_scalars(prepared: PreparedKey, w_mont: np.ndarray) -> np.ndarray:
    """Standard-form ``(n, 4)`` scalars of the h_query MSM: ``A*B - C`` on the odd coset."""
    abc = _qap_abc(prepared.coef_matrix, prepared.coef_constraint, prepared.coef_signal,
                   prepared.coef_value, w_mont, prepared.domain_size)
    odd_coset_many(abc)
    out = np.empty((prepared.domain_size, 4), dtype=np.uint64)
    _join_abc(abc, out)
    return out


@njit(cache=True)
def _finish(msm_a, msm_b1, msm_b2, msm_c, msm_h, alpha1, beta1, delta1, beta2, delta2, r, s, neg_rs):
    """The blinding terms of snarkjs ``groth16_prove.js``; returns ``(pi_a, pi_c)`` Jacobian rows
    ``(2, 12)`` and ``pi_b`` ``(1, 24)``. Scalars ``r, s, neg_rs`` are standard-form 4-tuples."""
    d1 = ec.g1_load_jac(delta1, 0)
    pi_a = ec.g1_add(ec.g1_add(ec.g1_load_jac(msm_a, 0), ec.g1_load_jac(alpha1, 0)), ec.g1_mul(d1, r))
    b1 = ec.g1_add(ec.g1_add(ec.g1_load_jac(msm_b1, 0), ec.g1_load_jac(beta1, 0)), ec.g1_mul(d1, s))
    pi_b = ec.g2_add(ec.g2_add(ec.g2_load_jac(msm_b2, 0), ec.g2_load_jac(beta2, 0)),
                     ec.g2_mul(ec.g2_load_jac(delta2, 0), s))
    pi_c = ec.g1_add(ec.g1_load_jac(msm_c, 0), ec.g1_load_jac(msm_h, 0))
    pi_c = ec.g1_add(pi_c, ec.g1_mul(pi_a, s))
    pi_c = ec.g1_add(pi_c, ec.g1_mul(b1, r))
    pi_c = ec.g1_add(pi_c, ec.g1_mul(d1, neg_rs))
    g1 = np.empty((2, 12), dtype=np.uint64)
    ec.g1_store_jac(g1, 0, pi_a)
    ec.g1_store_jac(g1, 1, pi_c)
    g2 = np.empty((1, 24), dtype=np.uint64)
    ec.g2_store_jac(g2, 0, pi_b)
    return g1, g2


def _msm_nonzero_g1(points: np.ndarray, scalars: np.ndarray) -> np.ndarray:
    nz = scalars.any(axis=1)
    return msm_g1_arrays(points[nz], scalars[nz])


def _scalar(k: int) -> tuple:
    return tuple(to_limbs([k % R])[0])


def _random_fr() -> int:
    return secrets.randbelow(R - 1) + 1


def _prove_prepared(pk: ProvingKey, prep: PreparedKey, witness: Sequence[int], r: int, s: int) -> Proof:
    check_witness(pk, witness)
    w_std = to_limbs(witness)
    h = h_scalars(prep, to_mont(FR, w_std))
    nz = w_std.any(axis=1)
    w_nz = w_std[nz]
    priv = prep.n_public + 1
    g1, g2 = _finish(
        msm_g1_arrays(prep.a_query[nz], w_nz), msm_g1_arrays(prep.b_g1_query[nz], w_nz),
        msm_g2_arrays(prep.b_g2_query[nz], w_nz), _msm_nonzero_g1(prep.c_query, w_std[priv:]),
        _msm_nonzero_g1(prep.h_query, h), prep.alpha1, prep.beta1, prep.delta1, prep.beta2, prep.delta2,
        _scalar(r), _scalar(s), _scalar(-r * s))
    a_c = g1_from_affine_array(g1_batch_to_affine(g1))
    return Proof(a=a_c[0], b=g2_from_affine_array(g2_batch_to_affine(g2))[0], c=a_c[1])


def prove(pk: ProvingKey, witness: Sequence[int], *, r: int | None = None, s: int | None = None) -> Proof:
    """Groth16 proof of ``witness`` under ``pk`` (same contract and output as ``prover_ref.prove``).

    Args:
        pk: proving key; its limb arrays are cached in ``pk.cache`` on first use.
        witness: ``pk.n_vars`` Fr ints with ``witness[0] == 1``.
        r, s: blinding scalars; random non-zero Fr (:mod:`secrets`) when None.

    Raises:
        WitnessError: bad witness length or values.
        MalformedProof: an inconsistent key (see :func:`prepare`).
    """
    prep = prepare(pk)
    r = _random_fr() if r is None else r % R
    s = _random_fr() if s is None else s % R
    return _prove_prepared(pk, prep, witness, r, s)


def prove_many(pk: ProvingKey, witnesses: Sequence[Sequence[int]], *,
               randomness: Sequence[tuple[int, int]] | None = None) -> list[Proof]:
    """Proofs of many witnesses of one circuit, preparing the key once.

    Args:
        pk: the circuit's proving key.
        witnesses: one witness per proof.
        randomness: optional ``(r, s)`` per witness (for reproducible batches); random otherwise.

    Raises:
        WitnessError: a witness is malformed (the message names it by the witness check).
        ValueError: ``randomness`` is given with a different length than ``witnesses``.
    """
    if randomness is not None and len(randomness) != len(witnesses):
        raise ValueError(f"randomness: {len(randomness)} (r, s) pairs for {len(witnesses)} witnesses")
    prep = prepare(pk)
    proofs = []
    for i, w in enumerate(witnesses):
        r, s = randomness[i] if randomness is not None else (_random_fr(), _random_fr())
        proofs.append(_prove_prepared(pk, prep, w, r % R, s % R))
    return proofs
