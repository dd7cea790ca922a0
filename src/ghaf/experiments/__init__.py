"""A/B experiments over deployments, and the statistics that judge them (``stats``)."""
