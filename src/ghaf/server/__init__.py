"""``ghaf server``: one governed HTTP control plane in front of every service.

The server holds the secrets (KEK, signing key, database and store credentials); its
clients hold a URL and a credential. Every route declares the action it performs
(:mod:`ghaf.server.routing`), every write goes through the spine (authorize, act,
audit), and every caller is proven by a token or an OIDC JWT, never asserted.
"""
