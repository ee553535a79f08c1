"""Tests of dass/pipeline/."""
