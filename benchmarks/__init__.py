"""Benchmarks of netscope's speed (not tests): run them as scripts, see the README."""
