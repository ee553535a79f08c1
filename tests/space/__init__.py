"""Tests of dass/space/."""
