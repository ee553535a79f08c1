"""Tests of dass/predictor/."""
