"""Tests of dass/proxies/."""
