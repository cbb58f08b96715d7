"""Open Badges 3.0 credentials: issuer keys, signing (eddsa-rdfc-2022 and VC-JWT), baking,
Bitstring Status List revocation and suspension, step-by-step verification, expiry and stacks.

The pure standards code (``keys``, ``documents``, ``dataintegrity``, ``jwt``, ``baking``,
``statuslist``, ``verify``) needs no database and no Flask; ``models``, ``issuance``, ``stacks``
and ``web`` join it to the rest of Microcred.
"""
