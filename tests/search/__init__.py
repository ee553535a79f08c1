"""Tests of dass/search/."""
