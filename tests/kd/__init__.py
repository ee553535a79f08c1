"""Tests of dass/kd/."""
