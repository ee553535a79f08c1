"""Tests of dass/database/."""
