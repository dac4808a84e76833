"""Validated settings of each server role, read from pyinfra host data."""
