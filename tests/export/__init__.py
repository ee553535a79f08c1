"""Tests of dass/export/."""
