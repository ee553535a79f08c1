"""Tests of the scripts under bench/ and script/gpu_check.sh."""
