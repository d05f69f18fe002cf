"""Speed, never quality: ingest throughput and query latency, the decisions browser at archive size, the chat
under concurrent sessions, and the SYNTHETIC corpus they run on.

Command line: `python -m bench run|load|browse|synth ...` (see bench/__main__.py and bench/README.md);
results go to bench/results. Quality figures come from `python -m eval` on the gold set.

The top of the layers (core <- ingest <- rag <- ui / app.py, eval, bench): bench may import any of them,
none of them imports bench. Modules load lazily, so `import bench` stays light.
"""
