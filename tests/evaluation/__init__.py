"""Tests of dass/evaluation/."""
