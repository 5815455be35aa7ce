"""Vector search over a collection's vectors: exact (numpy), approximate (usearch HNSW),
filters, and the manager that keeps persisted indexes in step with the table.

The submodules import numpy and usearch; nothing here imports them, so that the command
line starts without them.
"""
