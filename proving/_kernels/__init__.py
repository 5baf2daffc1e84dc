"""numba kernels of :mod:`proving` (private): limb arithmetic, curve formulas, NTT and MSM loops.

Everything here works on 256-bit values as 4 little-endian ``uint64`` limbs (a numba
``UniTuple(uint64, 4)`` in registers, or rows of an ``(n, 4)`` ``uint64`` array in memory),
in Montgomery form unless a name says otherwise. The public, documented API lives in
:mod:`proving.field`, :mod:`proving.curve`, :mod:`proving.ntt` and :mod:`proving.msm`.
"""
