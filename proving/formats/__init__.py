"""File formats of the circom/snarkjs ecosystem: the iden3 binary container (``.r1cs``,
``.wtns``, ``.zkey``) and snarkjs JSON (``proof.json``, ``public.json``,
``verification_key.json``)."""
