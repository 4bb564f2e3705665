"""Tests of the evaluations app: statistics, agreement command."""
