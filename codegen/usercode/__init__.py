"""The users' own code: checking handler implementations against the schemas
(``toolkit check``) and scaffolding them (``toolkit scaffold``), read and
edited with libcst, never imported."""
