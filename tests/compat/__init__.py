"""Tests of dass/compat/."""
