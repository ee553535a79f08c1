"""Tests of dass/train/."""
