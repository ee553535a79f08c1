"""Tests of dass/data/."""
