"""The kernel every other package builds on; it imports nothing of ours.

Layers (each imports only those to its left; tests/test_layers.py walks the imports):

    core  <-  ingest  <-  rag  <-  ui / app.py, eval, bench

core holds the typed values (types), the one settings object (settings), the errors, text helpers (words,
stems, the one sentence splitter), case numbers, token counting and logging set-up.
"""
