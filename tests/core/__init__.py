"""Tests of the cross-cutting modules of dass/ (config, hashing, runid, io, api, task, layers, code shape,
bad input)."""
