"""Running the product on this machine beside its servers: a local PostgreSQL cluster (postgres.py) and
`make cluster` (cluster.py: PostgreSQL + a Chroma server + two app instances on loopback).

The app level: it may import core, ingest, rag and ui; nothing imports it (tests/pgserver.py aside).
"""
