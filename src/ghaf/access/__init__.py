"""Governed uses of security: tokens, role bindings, key rotation, audit operations,
HTTP authentication and residency checks on writes.

The building blocks these use (crypto, keys, signing, the policy engine, the audit
chain) live in :mod:`ghaf.security`, below the spine; this package sits beside the
other services, above it.
"""
